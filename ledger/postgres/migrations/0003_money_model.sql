-- 0003: the money model (issue 7). A replay is free only when it is the
-- same request as its original (request_hash) within the vendor's replay
-- window; a reservation may be shrunk to the key's headroom down to a
-- minimum (Twilio calls bounded by TimeLimit); a call that acts on a known
-- vendor object records it before forwarding, so what a key has counted for
-- that object can be summed.

ALTER TABLE calls ADD COLUMN request_hash text NOT NULL DEFAULT '';

-- What a key has counted for one vendor object (ObjectExposure).
CREATE INDEX calls_key_txn_idx ON calls (key_id, vendor_txn_id) WHERE vendor_txn_id <> '';

DROP FUNCTION keybrake_reserve(text, text, text, text, text, text, bigint, text, timestamptz);

-- keybrake_reserve is the gate's check-and-reserve. A call with something
-- to reserve (or an idempotency key the vendor honours) locks the key row
-- FOR NO KEY UPDATE, so reservations against one key are serialised across
-- every node, and checks in this order: vendor, revoked, expired,
-- idempotency (a true replay goes free, the same key with another request
-- or while its original is in flight is refused), caps (lifetime and UTC
-- day: spent + reserved + estimate <= cap). With p_minimum set, as much of
-- the estimate as the headroom allows is reserved, but at least p_minimum.
-- A zero-cost call checks vendor, revoked and expired without the lock. A
-- call row is written whatever the outcome, with the status the gate
-- answers a refusal with. An unknown key raises no_data_found (P0002).
CREATE FUNCTION keybrake_reserve(
	p_call_id     text,
	p_key_id      text,
	p_vendor      text,
	p_method      text,
	p_path        text,
	p_endpoint    text,
	p_estimate    bigint,
	p_minimum     bigint,
	p_idem        text,
	p_fingerprint text,
	p_window_us   bigint,
	p_object      text,
	p_now         timestamptz,
	OUT outcome   text,
	OUT replay_of text,
	OUT run_label text,
	OUT remaining bigint,
	OUT held      bigint
) LANGUAGE plpgsql AS $$
DECLARE
	k          vault_keys%ROWTYPE;
	v_day      date := (p_now AT TIME ZONE 'UTC')::date;
	d_spent    bigint;
	d_reserved bigint;
	v_state    text := 'none';
	v_headroom bigint;
	o_hash     text;
	o_state    text;
	-- An idempotency key only matters where the vendor honours it (a
	-- replay window); elsewhere it is recorded and nothing more.
	v_replays  boolean := p_idem <> '' AND p_window_us > 0;
	-- A zero-cost call that cannot be a replay reserves nothing, so it
	-- needs neither the key row lock nor the caps: only the key's vendor,
	-- revocation and expiry, read as committed (a revocation that has
	-- returned is seen), and a durable call row. Its count goes to a
	-- sharded counter so that a run's reads do not queue behind each other
	-- or behind its spend calls on the key row.
	v_free     boolean := p_estimate = 0 AND p_minimum = 0 AND NOT (p_idem <> '' AND p_window_us > 0);
BEGIN
	held := 0;
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
		IF v_replays THEN
			-- The original: the first call of this key with this
			-- idempotency key that went to the vendor with a reservation
			-- and is live or settled, within the vendor's window, and on
			-- which the vendor honoured the key (a fingerprint was taken:
			-- not a GET, which Stripe ignores the header on). A
			-- released original (the vendor refused it and kept no
			-- result) or an unknown one (the vendor may never have seen
			-- it) makes no replay: the retry may really move money.
			SELECT c.call_id, c.request_hash, c.cost_state INTO replay_of, o_hash, o_state FROM calls c
				WHERE c.key_id = k.id AND c.idempotency_key = p_idem AND c.request_hash <> ''
				  AND c.replay_of = '' AND c.cost_state IN ('reserved', 'settled', 'unpriced')
				  AND c.started_at > p_now - make_interval(secs => p_window_us / 1000000.0)
				ORDER BY c.seq LIMIT 1;
			replay_of := COALESCE(replay_of, '');
		END IF;

		IF replay_of <> '' AND o_hash <> p_fingerprint THEN
			outcome := 'idempotency_mismatch';
		ELSIF replay_of <> '' AND o_state = 'reserved' THEN
			outcome := 'idempotency_in_flight';
		ELSIF replay_of <> '' THEN
			-- The vendor answers a replay from its own idempotency cache:
			-- no money moves, so nothing is reserved.
			outcome := 'idempotent_replay';
			k.calls := k.calls + 1;
		ELSE
			-- The headroom of the tighter cap, written so that no estimate
			-- can overflow its way past the check; NULL when no cap is set.
			v_headroom := LEAST(
				CASE WHEN k.total_cap IS NOT NULL THEN k.total_cap - (k.spent + k.reserved) END,
				CASE WHEN k.daily_cap IS NOT NULL THEN k.daily_cap - (d_spent + d_reserved) END);
			IF v_headroom IS NULL OR p_estimate <= v_headroom THEN
				held := p_estimate;
			ELSIF p_minimum > 0 AND p_minimum <= v_headroom THEN
				held := v_headroom;
			END IF;
			IF held = 0 AND p_estimate > 0 THEN
				outcome := 'cap_hit';
				k.cap_hits := k.cap_hits + 1;
			ELSE
				outcome := 'forwarded';
				v_state := 'reserved';
				k.calls := k.calls + 1;
				k.reserved := k.reserved + held;
				d_reserved := d_reserved + held;
				INSERT INTO key_days AS d (key_id, day, spent, reserved)
					VALUES (k.id, v_day, 0, held)
					ON CONFLICT (key_id, day) DO UPDATE SET reserved = d.reserved + EXCLUDED.reserved;
			END IF;
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
			outcome, status_code, reserved, idempotency_key, request_hash, replay_of, vendor_txn_id,
			cost_state, day, started_at)
		VALUES (p_call_id, k.id, k.run_label, p_vendor, p_method, p_path, p_endpoint,
			-- A refusal's row carries the status the gate answers with.
			outcome, CASE outcome WHEN 'cap_hit' THEN 429 WHEN 'forwarded' THEN 0 WHEN 'idempotent_replay' THEN 0
				WHEN 'idempotency_mismatch' THEN 400 WHEN 'idempotency_in_flight' THEN 409 ELSE 401 END,
			held, p_idem, p_fingerprint, replay_of, p_object, v_state, v_day, p_now);
END;
$$;
