-- 0002: the reserving and settling functions.
--
-- Each ledger operation that moves money is one function call, so it costs
-- one round trip and runs in one implicit transaction: no client-side
-- transaction can be left open by a node that dies mid-call.

-- Zero-cost calls (nothing to reserve, no idempotency key) count into
-- key_call_shards rather than the key row, so a run's reads neither queue
-- behind each other nor behind its charges. A key's calls are
-- vault_keys.calls plus the sum of its shards.
CREATE TABLE key_call_shards (
	key_id text     NOT NULL REFERENCES vault_keys (id) ON DELETE CASCADE,
	shard  smallint NOT NULL,
	calls  bigint   NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, shard)
);

-- keybrake_reserve is the gate's check-and-reserve. A call with something
-- to reserve (or an idempotency key) locks the key row FOR NO KEY UPDATE, so
-- reservations against one key are serialised across every node, and checks
-- in this order: vendor, revoked, expired, idempotent replay, caps (lifetime
-- and UTC day: spent + reserved + estimate <= cap). A zero-cost call checks
-- vendor, revoked and expired without the lock. A call row is written
-- whatever the outcome, with the status the gate answers a refusal with.
-- An unknown key raises no_data_found (P0002) and writes nothing.
CREATE OR REPLACE FUNCTION keybrake_reserve(
	p_call_id  text,
	p_key_id   text,
	p_vendor   text,
	p_method   text,
	p_path     text,
	p_endpoint text,
	p_estimate bigint,
	p_idem     text,
	p_now      timestamptz,
	OUT outcome   text,
	OUT replay_of text,
	OUT run_label text,
	OUT remaining bigint
) LANGUAGE plpgsql AS $$
DECLARE
	k          vault_keys%ROWTYPE;
	v_day      date := (p_now AT TIME ZONE 'UTC')::date;
	d_spent    bigint;
	d_reserved bigint;
	v_reserved bigint := 0;
	v_state    text := 'none';
	-- A zero-cost call without an idempotency key reserves nothing, so it
	-- needs neither the key row lock nor the caps: only the key's vendor,
	-- revocation and expiry, read as committed (a revocation that has
	-- returned is seen), and a durable call row. Its count goes to a
	-- sharded counter so that a run's reads do not queue behind each other
	-- or behind its spend calls on the key row.
	v_free     boolean := p_estimate = 0 AND p_idem = '';
BEGIN
	IF v_free THEN
		SELECT * INTO k FROM vault_keys WHERE id = p_key_id;
	ELSE
		-- FOR NO KEY UPDATE (not FOR UPDATE): it serialises spend
		-- reservations on the key all the same, but lets the foreign-key
		-- checks of zero-cost calls' inserts (FOR KEY SHARE) through.
		SELECT * INTO k FROM vault_keys WHERE id = p_key_id FOR NO KEY UPDATE;
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'vault key % not found', p_key_id USING ERRCODE = 'no_data_found';
	END IF;

	SELECT d.spent, d.reserved INTO d_spent, d_reserved
		FROM key_days d WHERE d.key_id = k.id AND d.day = v_day;
	d_spent := COALESCE(d_spent, 0);
	d_reserved := COALESCE(d_reserved, 0);

	run_label := k.run_label;
	replay_of := '';

	IF k.vendor <> p_vendor THEN
		outcome := 'wrong_vendor';
	ELSIF k.revoked_at IS NOT NULL THEN
		outcome := 'revoked';
	ELSIF p_now >= k.expires_at THEN
		outcome := 'expired';
	ELSIF v_free THEN
		outcome := 'forwarded';
		v_state := 'reserved';
		INSERT INTO key_call_shards AS s (key_id, shard, calls)
			VALUES (k.id, (random() * 15)::smallint, 1)
			ON CONFLICT (key_id, shard) DO UPDATE SET calls = s.calls + 1;
	ELSE
		IF p_idem <> '' THEN
			SELECT c.call_id INTO replay_of FROM calls c
				WHERE c.key_id = k.id AND c.idempotency_key = p_idem
				  AND c.replay_of = '' AND c.cost_state IN ('reserved', 'settled', 'unpriced')
				ORDER BY c.seq LIMIT 1;
			replay_of := COALESCE(replay_of, '');
		END IF;

		IF replay_of <> '' THEN
			-- The vendor answers a replay from its own idempotency cache:
			-- no money moves, so nothing is reserved.
			outcome := 'idempotent_replay';
			k.calls := k.calls + 1;
		-- spent + reserved + estimate <= cap, written against the headroom
		-- so that no estimate can overflow its way past the check.
		ELSIF (k.total_cap IS NOT NULL AND p_estimate > k.total_cap - (k.spent + k.reserved))
		   OR (k.daily_cap IS NOT NULL AND p_estimate > k.daily_cap - (d_spent + d_reserved)) THEN
			outcome := 'cap_hit';
			k.cap_hits := k.cap_hits + 1;
		ELSE
			outcome := 'forwarded';
			v_reserved := p_estimate;
			v_state := 'reserved';
			k.calls := k.calls + 1;
			k.reserved := k.reserved + p_estimate;
			d_reserved := d_reserved + p_estimate;
			INSERT INTO key_days AS d (key_id, day, spent, reserved)
				VALUES (k.id, v_day, 0, p_estimate)
				ON CONFLICT (key_id, day) DO UPDATE SET reserved = d.reserved + EXCLUDED.reserved;
		END IF;

		UPDATE vault_keys SET reserved = k.reserved, calls = k.calls, cap_hits = k.cap_hits
			WHERE id = k.id;
	END IF;

	-- The headroom of the tighter cap (LEAST skips one that is not set),
	-- never below zero: a settled cost above its estimate can overshoot.
	remaining := LEAST(
		CASE WHEN k.total_cap IS NOT NULL THEN k.total_cap - (k.spent + k.reserved) END,
		CASE WHEN k.daily_cap IS NOT NULL THEN k.daily_cap - (d_spent + d_reserved) END);
	remaining := GREATEST(COALESCE(remaining, 0), 0);

	INSERT INTO calls (call_id, key_id, run_label, vendor, method, path, endpoint,
			outcome, status_code, reserved, idempotency_key, replay_of, cost_state, day, started_at)
		VALUES (p_call_id, k.id, k.run_label, p_vendor, p_method, p_path, p_endpoint,
			-- A refusal's row carries the status the gate answers with.
			outcome, CASE outcome WHEN 'cap_hit' THEN 429 WHEN 'forwarded' THEN 0 WHEN 'idempotent_replay' THEN 0 ELSE 401 END, v_reserved, p_idem, replay_of, v_state, v_day, p_now);
END;
$$;

-- keybrake_finish settles ('settle'), releases ('release') or marks unknown
-- ('unknown') one call, moving the key's and the call day's counters as
-- ledger.Store documents. It returns the call's new cost state, or '' when
-- the call was not open (already settled, released, refused or a replay) and
-- nothing changed, so late or repeated settlements never count twice. An
-- unknown call raises no_data_found (P0002).
CREATE OR REPLACE FUNCTION keybrake_finish(
	p_call_id         text,
	p_mode            text,
	p_cost            bigint,
	p_state           text,
	p_status_code     integer,
	p_vendor_amount   bigint,
	p_vendor_currency text,
	p_vendor_txn_id   text,
	p_outcome         text,
	p_now             timestamptz
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	c          calls%ROWTYPE;
	v_held     bigint;
	v_cost     bigint;
	v_state    text;
	d_spent    bigint := 0;
	d_reserved bigint := 0;
BEGIN
	-- Locking the call row serialises a settlement racing a reconciler.
	SELECT * INTO c FROM calls WHERE call_id = p_call_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'call % not found', p_call_id USING ERRCODE = 'no_data_found';
	END IF;
	IF c.cost_state NOT IN ('reserved', 'unknown', 'unpriced') THEN
		RETURN '';
	END IF;

	v_held := CASE WHEN c.cost_state IN ('reserved', 'unknown') THEN c.reserved ELSE 0 END;
	CASE p_mode
	WHEN 'settle' THEN
		v_cost := p_cost;
		v_state := p_state;
		d_reserved := -v_held;
		d_spent := p_cost - c.cost;
	WHEN 'release' THEN
		v_cost := 0;
		v_state := 'released';
		d_reserved := -v_held;
		d_spent := -c.cost;
	WHEN 'unknown' THEN
		v_cost := c.cost;
		v_state := CASE WHEN c.cost_state = 'reserved' THEN 'unknown' ELSE c.cost_state END;
	ELSE
		RAISE EXCEPTION 'unknown finish mode %', p_mode USING ERRCODE = 'invalid_parameter_value';
	END CASE;

	IF d_spent <> 0 OR d_reserved <> 0 THEN
		UPDATE vault_keys SET spent = spent + d_spent, reserved = reserved + d_reserved
			WHERE id = c.key_id;
		UPDATE key_days SET spent = spent + d_spent, reserved = reserved + d_reserved
			WHERE key_id = c.key_id AND day = c.day;
	END IF;

	UPDATE calls SET
		cost = v_cost,
		cost_state = v_state,
		status_code = p_status_code,
		vendor_amount = COALESCE(p_vendor_amount, vendor_amount),
		vendor_currency = CASE WHEN p_vendor_currency <> '' THEN p_vendor_currency ELSE vendor_currency END,
		vendor_txn_id = CASE WHEN p_vendor_txn_id <> '' THEN p_vendor_txn_id ELSE vendor_txn_id END,
		outcome = CASE WHEN p_outcome <> '' THEN p_outcome ELSE outcome END,
		finished_at = p_now
	WHERE call_id = p_call_id;
	RETURN v_state;
END;
$$;
