-- 0007: the ledger at scale (issue 20; docs/ledger.md).
--
-- Every audit filter has an index ending in the audit order (started_at,
-- seq), so a filtered page is an index range, never a walk of
-- calls_by_started with a filter.
CREATE INDEX calls_by_vendor ON calls (vendor, started_at, seq);
CREATE INDEX calls_by_outcome ON calls (outcome, started_at, seq);
CREATE INDEX calls_by_state ON calls (cost_state, started_at, seq);

-- A refusal before reservation is counted per key (or address), vendor,
-- outcome and minute: the first refusal's row is the sample, call_count
-- says how many it stands for and finished_at when the last one was.
-- refusal_bucket names the minute's row; it is NULL on every other call.
ALTER TABLE calls ADD COLUMN call_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE calls ADD COLUMN refusal_bucket TEXT;
CREATE UNIQUE INDEX calls_by_refusal_bucket ON calls (refusal_bucket) WHERE refusal_bucket IS NOT NULL;

-- The daily rollup the summaries read: per UTC day (the call's day, that of
-- its key_days row), run, vendor, endpoint and outcome, the counters of
-- ledger.SummaryRow. The triggers below keep it in the transaction that
-- writes the call, whatever writes it. Nothing removes from it when calls
-- are deleted (retain_calls): summaries outlive the rows they count.
CREATE TABLE call_days (
    day       INTEGER NOT NULL,
    run_label TEXT    NOT NULL,
    vendor    TEXT    NOT NULL,
    endpoint  TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    calls     INTEGER NOT NULL DEFAULT 0,
    forwarded INTEGER NOT NULL DEFAULT 0,
    replays   INTEGER NOT NULL DEFAULT 0,
    cap_hits  INTEGER NOT NULL DEFAULT 0,
    refused   INTEGER NOT NULL DEFAULT 0,
    spent     INTEGER NOT NULL DEFAULT 0,
    reserved  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, run_label, vendor, endpoint, outcome)
) STRICT, WITHOUT ROWID;

CREATE INDEX call_days_by_run ON call_days (run_label, day);

-- A call counts: call_count calls; forwarded when it held a reservation
-- (its cost state left none) or is a replay; a cap hit by its outcome;
-- refused when refused without a reservation otherwise; its cost; and its
-- reservation while it is reserved or unknown.
INSERT INTO call_days (day, run_label, vendor, endpoint, outcome, calls, forwarded, replays, cap_hits, refused, spent, reserved)
SELECT day, run_label, vendor, endpoint, outcome, count(*),
       sum(cost_state <> 'none' OR replay_of <> ''),
       sum(replay_of <> ''),
       sum(outcome IN ('cap_hit', 'budget_hit')),
       sum(cost_state = 'none' AND replay_of = '' AND outcome NOT IN ('cap_hit', 'budget_hit')),
       sum(cost),
       sum(CASE WHEN cost_state IN ('reserved', 'unknown') THEN reserved ELSE 0 END)
FROM calls GROUP BY day, run_label, vendor, endpoint, outcome;

CREATE TRIGGER calls_roll_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO call_days (day, run_label, vendor, endpoint, outcome, calls, forwarded, replays, cap_hits, refused, spent, reserved)
    VALUES (NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint, NEW.outcome, NEW.call_count,
        NEW.call_count * (NEW.cost_state <> 'none' OR NEW.replay_of <> ''),
        NEW.call_count * (NEW.replay_of <> ''),
        NEW.call_count * (NEW.outcome IN ('cap_hit', 'budget_hit')),
        NEW.call_count * (NEW.cost_state = 'none' AND NEW.replay_of = '' AND NEW.outcome NOT IN ('cap_hit', 'budget_hit')),
        NEW.cost,
        CASE WHEN NEW.cost_state IN ('reserved', 'unknown') THEN NEW.reserved ELSE 0 END)
    ON CONFLICT (day, run_label, vendor, endpoint, outcome) DO UPDATE SET
        calls = calls + excluded.calls, forwarded = forwarded + excluded.forwarded,
        replays = replays + excluded.replays, cap_hits = cap_hits + excluded.cap_hits,
        refused = refused + excluded.refused, spent = spent + excluded.spent,
        reserved = reserved + excluded.reserved;
END;

-- An update takes the old version's counts out and puts the new one's in
-- (a settlement may change the outcome, and so the row it counts in).
CREATE TRIGGER calls_roll_update AFTER UPDATE OF outcome, cost_state, cost, reserved, call_count ON calls
WHEN OLD.outcome <> NEW.outcome OR OLD.cost_state <> NEW.cost_state OR OLD.cost <> NEW.cost
  OR OLD.reserved <> NEW.reserved OR OLD.call_count <> NEW.call_count
BEGIN
    UPDATE call_days SET
        calls = calls - OLD.call_count,
        forwarded = forwarded - OLD.call_count * (OLD.cost_state <> 'none' OR OLD.replay_of <> ''),
        replays = replays - OLD.call_count * (OLD.replay_of <> ''),
        cap_hits = cap_hits - OLD.call_count * (OLD.outcome IN ('cap_hit', 'budget_hit')),
        refused = refused - OLD.call_count * (OLD.cost_state = 'none' AND OLD.replay_of = '' AND OLD.outcome NOT IN ('cap_hit', 'budget_hit')),
        spent = spent - OLD.cost,
        reserved = reserved - CASE WHEN OLD.cost_state IN ('reserved', 'unknown') THEN OLD.reserved ELSE 0 END
    WHERE day = OLD.day AND run_label = OLD.run_label AND vendor = OLD.vendor
      AND endpoint = OLD.endpoint AND outcome = OLD.outcome;
    INSERT INTO call_days (day, run_label, vendor, endpoint, outcome, calls, forwarded, replays, cap_hits, refused, spent, reserved)
    VALUES (NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint, NEW.outcome, NEW.call_count,
        NEW.call_count * (NEW.cost_state <> 'none' OR NEW.replay_of <> ''),
        NEW.call_count * (NEW.replay_of <> ''),
        NEW.call_count * (NEW.outcome IN ('cap_hit', 'budget_hit')),
        NEW.call_count * (NEW.cost_state = 'none' AND NEW.replay_of = '' AND NEW.outcome NOT IN ('cap_hit', 'budget_hit')),
        NEW.cost,
        CASE WHEN NEW.cost_state IN ('reserved', 'unknown') THEN NEW.reserved ELSE 0 END)
    ON CONFLICT (day, run_label, vendor, endpoint, outcome) DO UPDATE SET
        calls = calls + excluded.calls, forwarded = forwarded + excluded.forwarded,
        replays = replays + excluded.replays, cap_hits = cap_hits + excluded.cap_hits,
        refused = refused + excluded.refused, spent = spent + excluded.spent,
        reserved = reserved + excluded.reserved;
END;
