-- 0006: API tokens as principals (issue 9). A token is stored by the
-- SHA-256 of its secret. Every key records the token that issued it
-- (token_id, '' for a configured bootstrap token). A token's daily_cap and
-- total_cap are a budget over every key it issued, checked by
-- keybrake_reserve in the same statement as the key's own caps.

CREATE TABLE api_tokens (
	id         text        PRIMARY KEY,
	hash       bytea       NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
	name       text        NOT NULL,
	role       text        NOT NULL,
	-- json, not jsonb: the policy is given back as it was stored.
	policy     json,
	daily_cap  bigint      CHECK (daily_cap >= 0),
	total_cap  bigint      CHECK (total_cap >= 0),
	created_at timestamptz NOT NULL,
	revoked_at timestamptz,
	-- The totals of every key the token issued, moved by the triggers
	-- below whenever a key's own totals move.
	spent      bigint      NOT NULL DEFAULT 0,
	reserved   bigint      NOT NULL DEFAULT 0
);

CREATE TABLE token_days (
	token_id text   NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
	day      date   NOT NULL,
	spent    bigint NOT NULL DEFAULT 0,
	reserved bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (token_id, day)
);

ALTER TABLE vault_keys ADD COLUMN token_id text NOT NULL DEFAULT '';
CREATE INDEX vault_keys_token_idx ON vault_keys (token_id, created_at DESC, id DESC) WHERE token_id <> '';

-- Whatever moves a key's totals (keybrake_reserve, keybrake_finish, an
-- operator's resolve) moves its token's by the same amounts, in the same
-- transaction, so the budget can never drift from its keys. The lock order
-- is always the key row, then the token row: keybrake_reserve locks them in
-- that order too, so no two calls deadlock.
CREATE FUNCTION keybrake_token_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE api_tokens SET spent = spent + (NEW.spent - OLD.spent), reserved = reserved + (NEW.reserved - OLD.reserved)
		WHERE id = NEW.token_id;
	RETURN NULL;
END;
$$;

CREATE TRIGGER vault_keys_token_totals AFTER UPDATE OF spent, reserved ON vault_keys
	FOR EACH ROW WHEN (NEW.token_id <> '' AND (NEW.spent <> OLD.spent OR NEW.reserved <> OLD.reserved))
	EXECUTE FUNCTION keybrake_token_totals();

CREATE FUNCTION keybrake_token_day_totals() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	v_token    text;
	d_spent    bigint := NEW.spent;
	d_reserved bigint := NEW.reserved;
BEGIN
	SELECT token_id INTO v_token FROM vault_keys WHERE id = NEW.key_id;
	IF v_token IS NULL OR v_token = '' THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'UPDATE' THEN
		d_spent := NEW.spent - OLD.spent;
		d_reserved := NEW.reserved - OLD.reserved;
	END IF;
	IF d_spent = 0 AND d_reserved = 0 THEN
		RETURN NULL;
	END IF;
	INSERT INTO token_days AS t (token_id, day, spent, reserved)
		VALUES (v_token, NEW.day, d_spent, d_reserved)
		ON CONFLICT (token_id, day) DO UPDATE SET spent = t.spent + EXCLUDED.spent, reserved = t.reserved + EXCLUDED.reserved;
	RETURN NULL;
END;
$$;

CREATE TRIGGER key_days_token_totals AFTER INSERT OR UPDATE OF spent, reserved ON key_days
	FOR EACH ROW EXECUTE FUNCTION keybrake_token_day_totals();

-- keybrake_reserve as in 0003, with two additions. The allowlist entry the
-- gate matched must still be in the key's allowlist as stored ('endpoint_
-- denied', 403, otherwise): a PATCH that narrows it holds from the next
-- call on every node, whatever a node's key cache still says. And the
-- token's budget: after the key row,
-- a key issued by a token with a budget locks the token row (FOR UPDATE,
-- always after the key row, so no deadlock), and a call the key's caps allow
-- is held against the tighter of the key's and the token's headroom. A call
-- the key could afford but the budget cannot is 'budget_hit' (429).
CREATE OR REPLACE FUNCTION keybrake_reserve(
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
	tk         api_tokens%ROWTYPE;
	v_day      date := (p_now AT TIME ZONE 'UTC')::date;
	d_spent    bigint;
	d_reserved bigint;
	t_spent    bigint := 0;
	t_reserved bigint := 0;
	v_budget   boolean := false;
	v_state    text := 'none';
	v_headroom bigint;
	v_key_room bigint;
	v_tok_room bigint;
	o_hash     text;
	o_state    text;
	v_replays  boolean := p_idem <> '' AND p_window_us > 0;
	v_free     boolean := p_estimate = 0 AND p_minimum = 0 AND NOT (p_idem <> '' AND p_window_us > 0);
BEGIN
	held := 0;
	IF v_free THEN
		SELECT * INTO k FROM vault_keys WHERE id = p_key_id;
	ELSE
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
	ELSIF p_endpoint <> '' AND NOT (p_endpoint = ANY (k.allowed_endpoints)) THEN
		outcome := 'endpoint_denied';
	ELSIF v_free THEN
		outcome := 'forwarded';
		v_state := 'reserved';
		INSERT INTO key_call_shards AS s (key_id, shard, calls)
			VALUES (k.id, (random() * 15)::smallint, 1)
			ON CONFLICT (key_id, shard) DO UPDATE SET calls = s.calls + 1;
	ELSE
		IF v_replays THEN
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
			outcome := 'idempotent_replay';
			k.calls := k.calls + 1;
		ELSE
			IF k.token_id <> '' THEN
				-- The second row, locked after the key row.
				SELECT * INTO tk FROM api_tokens WHERE id = k.token_id FOR UPDATE;
				v_budget := FOUND AND (tk.daily_cap IS NOT NULL OR tk.total_cap IS NOT NULL);
				IF v_budget THEN
					SELECT t.spent, t.reserved INTO t_spent, t_reserved
						FROM token_days t WHERE t.token_id = tk.id AND t.day = v_day;
					t_spent := COALESCE(t_spent, 0);
					t_reserved := COALESCE(t_reserved, 0);
				END IF;
			END IF;
			v_key_room := LEAST(
				CASE WHEN k.total_cap IS NOT NULL THEN k.total_cap - (k.spent + k.reserved) END,
				CASE WHEN k.daily_cap IS NOT NULL THEN k.daily_cap - (d_spent + d_reserved) END);
			IF v_budget THEN
				v_tok_room := LEAST(
					CASE WHEN tk.total_cap IS NOT NULL THEN tk.total_cap - (tk.spent + tk.reserved) END,
					CASE WHEN tk.daily_cap IS NOT NULL THEN tk.daily_cap - (t_spent + t_reserved) END);
			END IF;
			v_headroom := LEAST(v_key_room, v_tok_room);
			IF v_headroom IS NULL OR p_estimate <= v_headroom THEN
				held := p_estimate;
			ELSIF p_minimum > 0 AND p_minimum <= v_headroom THEN
				held := v_headroom;
			END IF;
			IF held = 0 AND p_estimate > 0 THEN
				-- The key's own caps first: a budget hit is a call the key
				-- alone would have let through.
				IF v_key_room IS NULL OR p_estimate <= v_key_room OR (p_minimum > 0 AND p_minimum <= v_key_room) THEN
					outcome := 'budget_hit';
				ELSE
					outcome := 'cap_hit';
				END IF;
				k.cap_hits := k.cap_hits + 1;
			ELSE
				outcome := 'forwarded';
				v_state := 'reserved';
				k.calls := k.calls + 1;
				k.reserved := k.reserved + held;
				d_reserved := d_reserved + held;
				t_reserved := t_reserved + held;
				tk.reserved := tk.reserved + held;
				INSERT INTO key_days AS d (key_id, day, spent, reserved)
					VALUES (k.id, v_day, 0, held)
					ON CONFLICT (key_id, day) DO UPDATE SET reserved = d.reserved + EXCLUDED.reserved;
			END IF;
		END IF;

		UPDATE vault_keys SET reserved = k.reserved, calls = k.calls, cap_hits = k.cap_hits
			WHERE id = k.id;
	END IF;

	remaining := LEAST(
		CASE WHEN k.total_cap IS NOT NULL THEN k.total_cap - (k.spent + k.reserved) END,
		CASE WHEN k.daily_cap IS NOT NULL THEN k.daily_cap - (d_spent + d_reserved) END,
		CASE WHEN v_budget AND tk.total_cap IS NOT NULL THEN tk.total_cap - (tk.spent + tk.reserved) END,
		CASE WHEN v_budget AND tk.daily_cap IS NOT NULL THEN tk.daily_cap - (t_spent + t_reserved) END);
	remaining := GREATEST(COALESCE(remaining, 0), 0);

	INSERT INTO calls (call_id, key_id, run_label, vendor, method, path, endpoint,
			outcome, status_code, reserved, idempotency_key, request_hash, replay_of, vendor_txn_id,
			cost_state, day, started_at)
		VALUES (p_call_id, k.id, k.run_label, p_vendor, p_method, p_path, p_endpoint,
			outcome, CASE outcome WHEN 'cap_hit' THEN 429 WHEN 'budget_hit' THEN 429 WHEN 'forwarded' THEN 0 WHEN 'idempotent_replay' THEN 0
				WHEN 'idempotency_mismatch' THEN 400 WHEN 'idempotency_in_flight' THEN 409
				WHEN 'endpoint_denied' THEN 403 ELSE 401 END,
			held, p_idem, p_fingerprint, replay_of, p_object, v_state, v_day, p_now);
END;
$$;
