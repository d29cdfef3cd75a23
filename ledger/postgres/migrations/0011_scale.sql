-- 0011: the ledger at scale (issue 20; docs/ledger.md), as the embedded
-- ledger's 0007.
--
-- Every audit filter has an index ending in the audit order (started_at,
-- seq): run, key and vendor had theirs, vendor_txn_id has the partial
-- calls_vendor_txn_any_idx (the audit writes its condition out).
CREATE INDEX calls_outcome_idx ON calls (outcome, started_at, seq);
CREATE INDEX calls_state_idx ON calls (cost_state, started_at, seq);

-- A refusal before reservation is counted per key, vendor, outcome and
-- minute (ledger.RefusalBucket): the first refusal's row is the sample,
-- call_count how many it stands for, finished_at when the last one ended.
ALTER TABLE calls ADD COLUMN call_count bigint NOT NULL DEFAULT 1;
ALTER TABLE calls ADD COLUMN refusal_bucket text;
CREATE UNIQUE INDEX calls_refusal_bucket_idx ON calls (refusal_bucket) WHERE refusal_bucket IS NOT NULL;

-- The daily rollup the summaries read, kept by a trigger in the
-- transaction that writes the call. Each database session (backend) counts
-- into rows of its own (shard = its pid): two transactions never update
-- the same rollup row, so the rollup adds no lock wait, and no deadlock,
-- between nodes writing calls of the same run; a summary sums the shards.
-- Nothing is taken out when calls are deleted (retain_calls).
CREATE TABLE call_days (
	day       date    NOT NULL,
	run_label text    NOT NULL,
	vendor    text    NOT NULL,
	endpoint  text    NOT NULL,
	outcome   text    NOT NULL,
	shard     integer NOT NULL,
	calls     bigint  NOT NULL DEFAULT 0,
	forwarded bigint  NOT NULL DEFAULT 0,
	replays   bigint  NOT NULL DEFAULT 0,
	cap_hits  bigint  NOT NULL DEFAULT 0,
	refused   bigint  NOT NULL DEFAULT 0,
	spent     bigint  NOT NULL DEFAULT 0,
	reserved  bigint  NOT NULL DEFAULT 0,
	PRIMARY KEY (day, run_label, vendor, endpoint, outcome, shard)
);
CREATE INDEX call_days_run_idx ON call_days (run_label, day);

-- keybrake_roll adds to the rollup row of k's day, run, vendor, endpoint
-- and outcome what plus counts and takes out what minus counts (either may
-- be NULL). A call counts: call_count calls; forwarded when it held a
-- reservation (its cost state left none) or is a replay; a cap hit by its
-- outcome; refused when refused without a reservation otherwise; its cost;
-- its reservation while reserved or unknown. PL/pgSQL, not SQL, so that its
-- statement is planned once per session rather than on every call.
CREATE FUNCTION keybrake_roll(k calls, plus calls, minus calls) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO call_days AS d (day, run_label, vendor, endpoint, outcome, shard,
			calls, forwarded, replays, cap_hits, refused, spent, reserved)
	SELECT k.day, k.run_label, k.vendor, k.endpoint, k.outcome, pg_backend_pid(),
		coalesce(sum(c.s * c.call_count), 0),
		coalesce(sum(c.s * c.call_count) FILTER (WHERE c.cost_state <> 'none' OR c.replay_of <> ''), 0),
		coalesce(sum(c.s * c.call_count) FILTER (WHERE c.replay_of <> ''), 0),
		coalesce(sum(c.s * c.call_count) FILTER (WHERE c.outcome IN ('cap_hit', 'budget_hit')), 0),
		coalesce(sum(c.s * c.call_count) FILTER (WHERE c.cost_state = 'none' AND c.replay_of = ''
			AND c.outcome NOT IN ('cap_hit', 'budget_hit')), 0),
		coalesce(sum(c.s * c.cost), 0),
		coalesce(sum(c.s * c.reserved) FILTER (WHERE c.cost_state IN ('reserved', 'unknown')), 0)
	FROM (SELECT (v.r).*, v.s FROM (VALUES (plus, 1), (minus, -1)) AS v(r, s)
		WHERE (v.r).call_id IS NOT NULL) AS c
	ON CONFLICT (day, run_label, vendor, endpoint, outcome, shard) DO UPDATE SET
		calls = d.calls + EXCLUDED.calls, forwarded = d.forwarded + EXCLUDED.forwarded,
		replays = d.replays + EXCLUDED.replays, cap_hits = d.cap_hits + EXCLUDED.cap_hits,
		refused = d.refused + EXCLUDED.refused, spent = d.spent + EXCLUDED.spent,
		reserved = d.reserved + EXCLUDED.reserved;
END;
$$;

-- An update moves the difference between the old and the new version: in
-- one rollup row when both count in the same one (a settlement, mostly),
-- else out of the old version's row and into the new one's (a settlement
-- that changed the outcome).
CREATE FUNCTION keybrake_roll_call() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM keybrake_roll(NEW, NEW, NULL);
	ELSIF (OLD.outcome, OLD.cost_state, OLD.cost, OLD.reserved, OLD.call_count)
		IS NOT DISTINCT FROM (NEW.outcome, NEW.cost_state, NEW.cost, NEW.reserved, NEW.call_count) THEN
		RETURN NULL;
	ELSIF (OLD.day, OLD.run_label, OLD.vendor, OLD.endpoint, OLD.outcome)
		= (NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint, NEW.outcome) THEN
		PERFORM keybrake_roll(NEW, NEW, OLD);
	ELSE
		PERFORM keybrake_roll(OLD, NULL, OLD);
		PERFORM keybrake_roll(NEW, NEW, NULL);
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER calls_roll AFTER INSERT OR UPDATE ON calls
	FOR EACH ROW EXECUTE FUNCTION keybrake_roll_call();

INSERT INTO call_days (day, run_label, vendor, endpoint, outcome, shard,
		calls, forwarded, replays, cap_hits, refused, spent, reserved)
SELECT day, run_label, vendor, endpoint, outcome, 0, count(*),
	count(*) FILTER (WHERE cost_state <> 'none' OR replay_of <> ''),
	count(*) FILTER (WHERE replay_of <> ''),
	count(*) FILTER (WHERE outcome IN ('cap_hit', 'budget_hit')),
	count(*) FILTER (WHERE cost_state = 'none' AND replay_of = '' AND outcome NOT IN ('cap_hit', 'budget_hit')),
	coalesce(sum(cost), 0),
	coalesce(sum(reserved) FILTER (WHERE cost_state IN ('reserved', 'unknown')), 0)
FROM calls GROUP BY day, run_label, vendor, endpoint, outcome;
