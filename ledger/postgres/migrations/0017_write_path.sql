-- 0017: three costs of the write path, measured with pg_stat_statements
-- and auto_explain on make bench's spend scenarios, and once_per over a
-- charge made in several calls.
--
-- 1. A batch's tags (0013) were recorded by an UPDATE of the calls just
-- inserted, queued after keybrake_batch in the same transaction: a second
-- version of every forwarded call's row, nearly always outside HOT (the
-- row's page is full), so a new entry in each of calls' indexes too: about
-- 1 ms a batch of 30 calls. keybrake_batch now takes the tags (r_tags),
-- writes each in the call's INSERT and returns it (o_tag).
--
-- 2. That UPDATE, sent as a statement of its own, was planned with the
-- session's settings: while calls' statistics were those of a small table
-- (a new ledger, or one that grew fast since the last autoanalyze) it
-- scanned the whole of calls for every batch (4 to 6 ms a batch, growing
-- with the table) until an autoanalyze came. A lone reservation
-- (keybrake_reserve) still records its tag after it, now through
-- keybrake_tag_calls, planned without sequential scans like the other
-- write functions.
--
-- 3. A batch's new rate slots are written in one statement. In 0016
-- keybrake_batch counted each call against its key's stateful rules
-- through keybrake_rule_take, which inserted the call's rate slot at once:
-- a PL/pgSQL call (the key row passed in and out whole) and an INSERT per
-- counted call, about 14 µs of the 22 µs a call with rules cost Postgres
-- more than one without. Now the batch counts in line the calls that
-- neither claim a once_per value nor find their key's ring full (the
-- common case: max_calls and a rate whose ring is still filling), and keeps
-- their new slots in arrays written by one INSERT when the batch's
-- reservations are done. A ring that is full is read before a call is
-- counted (keybrake_rule_denied), so the arrays are written first whenever
-- that read is made: a read never misses a slot the batch has taken. The
-- other calls (once_per claims, a full ring's slot updated in place) still
-- go through keybrake_rule_take, as keybrake_reserve's lone calls do.
--
-- 4. once_per and a charge in several calls. A value claimed by one call
-- refused every later call naming it, so the confirm or the capture of
-- the intent whose creation claimed the customer was refused as a second
-- charge. A call on an object (r_objects, p_object: the intent it
-- confirms, captures or updates) now goes on with the claims made by
-- calls on that same object (their vendor_txn_id) instead of being refused
-- by them (keybrake_rule_denied with the object; keybrake_rule_take leaves
-- such a claim to the call that made it). keybrake_reserve is recreated to
-- pass the object.
--
-- keybrake_batch is created with one more argument beside 0016's, which
-- stays: a node still running the previous version keeps calling it (and
-- tagging after it) until it is upgraded.

-- keybrake_rule_denied as in 0016, with the object the call acts on: a
-- once_per value claimed by a call on that same object (the create of the
-- intent this call confirms or captures, its vendor_txn_id) is that
-- charge going on, not a second one. A claim whose call is gone, or whose
-- object is not known yet (a create not settled), refuses as before.
CREATE FUNCTION keybrake_rule_denied(k vault_keys, p_once text, p_claims text, p_now timestamptz, p_object text,
	OUT rule text, OUT retry_us bigint) LANGUAGE plpgsql AS $$
DECLARE
	v_nth timestamptz;
BEGIN
	rule := '';
	retry_us := 0;
	IF k.once_per <> '' AND (p_once <> k.once_per OR coalesce(p_claims, '') IN ('', '[]')) THEN
		rule := 'once_per';
		RETURN;
	END IF;
	IF k.max_calls IS NOT NULL AND k.rule_calls >= k.max_calls THEN
		rule := 'max_calls';
		RETURN;
	END IF;
	IF k.rate_calls IS NOT NULL AND k.rate_taken >= k.rate_calls THEN
		-- The ring is full: the slot this call would take holds the N-th
		-- newest time. (A full ring without it cannot happen; if it did,
		-- the call is refused for a window rather than counted blind.)
		SELECT s.at INTO v_nth FROM key_rate_slots s
			WHERE s.key_id = k.id AND s.slot = (k.rate_taken % k.rate_calls)::integer;
		IF v_nth IS NULL OR v_nth > p_now - make_interval(secs => k.rate_window_us / 1000000.0) THEN
			rule := 'rate';
			retry_us := GREATEST(1, coalesce((extract(epoch FROM (v_nth - p_now)) * 1000000)::bigint, 0) + k.rate_window_us);
			RETURN;
		END IF;
	END IF;
	IF k.once_per <> '' AND EXISTS (SELECT 1 FROM key_claims c
			LEFT JOIN calls o ON o.call_id = c.call_id
			WHERE c.key_id = k.id AND c.value IN (SELECT jsonb_array_elements_text(p_claims::jsonb))
			  AND NOT (p_object <> '' AND coalesce(o.vendor_txn_id, '') = p_object)) THEN
		rule := 'once_per';
	END IF;
END;
$$;

-- keybrake_rule_take as in 0016, but a value the call's object holds
-- already (see keybrake_rule_denied) stays its first call's claim.
CREATE OR REPLACE FUNCTION keybrake_rule_take(k vault_keys, p_call_id text, p_claims text, p_now timestamptz)
	RETURNS vault_keys LANGUAGE plpgsql AS $$
BEGIN
	k.rule_calls := k.rule_calls + 1;
	IF k.once_per <> '' THEN
		INSERT INTO key_claims (key_id, value, call_id)
			SELECT k.id, v, p_call_id FROM jsonb_array_elements_text(p_claims::jsonb) AS v
			ON CONFLICT (key_id, value) DO NOTHING;
	END IF;
	IF k.rate_calls IS NOT NULL THEN
		-- A key's slots are 0 .. min(rate_taken, N) - 1 (counting fills
		-- them in order; a rebuild renumbers them from 0): until the ring
		-- is full the slot is new, after it exists. (An upsert here cost a
		-- tenth more per call in keybrake_batch.)
		k.rate_last := GREATEST(p_now, k.rate_last);
		IF k.rate_taken < k.rate_calls THEN
			INSERT INTO key_rate_slots (key_id, slot, at) VALUES (k.id, k.rate_taken::integer, k.rate_last);
		ELSE
			UPDATE key_rate_slots SET at = k.rate_last
				WHERE key_id = k.id AND slot = (k.rate_taken % k.rate_calls)::integer;
		END IF;
		k.rate_taken := k.rate_taken + 1;
	END IF;
	RETURN k;
END;
$$;

-- keybrake_reserve as in 0016, deciding once_per with the call's object.
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
	p_moves       boolean,
	p_once        text,
	p_claims      text,
	OUT outcome   text,
	OUT replay_of text,
	OUT run_label text,
	OUT remaining bigint,
	OUT held      bigint,
	OUT rule      text,
	OUT retry_us  bigint
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
	v_free     boolean := p_estimate = 0 AND p_minimum = 0 AND NOT (p_idem <> '' AND p_window_us > 0) AND NOT p_moves;
	v_counted  boolean := false;
BEGIN
	held := 0;
	rule := '';
	retry_us := 0;
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
				WHERE c.key_id = k.id AND c.idempotency_key = p_idem AND c.idempotency_key <> '' AND c.request_hash <> ''
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
			IF p_moves AND (k.once_per <> '' OR k.rule_calls >= k.max_calls OR k.rate_taken >= k.rate_calls) THEN
				SELECT x.rule, x.retry_us INTO rule, retry_us FROM keybrake_rule_denied(k, p_once, p_claims, p_now, p_object) x;
			END IF;
		END IF;
		IF rule <> '' THEN
			outcome := 'rule_denied';
		ELSIF outcome IS NULL THEN
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
				IF p_moves AND (k.max_calls IS NOT NULL OR k.rate_calls IS NOT NULL OR k.once_per <> '') THEN
					k := keybrake_rule_take(k, p_call_id, p_claims, p_now);
					v_counted := true;
				END IF;
			END IF;
		END IF;

		UPDATE vault_keys SET reserved = k.reserved, calls = k.calls, cap_hits = k.cap_hits, rule_calls = k.rule_calls,
				rate_taken = k.rate_taken, rate_last = k.rate_last
			WHERE id = k.id;
	END IF;

	remaining := LEAST(
		CASE WHEN k.total_cap IS NOT NULL THEN k.total_cap - (k.spent + k.reserved) END,
		CASE WHEN k.daily_cap IS NOT NULL THEN k.daily_cap - (d_spent + d_reserved) END,
		CASE WHEN v_budget AND tk.total_cap IS NOT NULL THEN tk.total_cap - (tk.spent + tk.reserved) END,
		CASE WHEN v_budget AND tk.daily_cap IS NOT NULL THEN tk.daily_cap - (t_spent + t_reserved) END);
	remaining := GREATEST(COALESCE(remaining, 0), 0);

	-- A refusal (nothing reserved, not a replay sent on to the vendor) is
	-- counted per key, vendor, outcome and minute, as RecordRefusal counts
	-- those refused before the reservation.
	INSERT INTO calls AS c (call_id, key_id, run_label, vendor, method, path, endpoint,
			outcome, status_code, reserved, idempotency_key, request_hash, replay_of, vendor_txn_id,
			cost_state, day, started_at, rule, rule_counted, refusal_bucket)
		VALUES (p_call_id, k.id, k.run_label, p_vendor, p_method, p_path, p_endpoint,
			outcome, keybrake_refusal_status(outcome, rule),
			held, p_idem, p_fingerprint, replay_of, p_object, v_state, v_day, p_now, rule, v_counted,
			CASE WHEN v_state = 'none' AND replay_of = '' THEN keybrake_refusal_bucket(k.id, p_vendor, outcome, rule, p_now) END)
		ON CONFLICT (refusal_bucket) WHERE refusal_bucket IS NOT NULL DO UPDATE SET
			call_count = c.call_count + 1,
			finished_at = GREATEST(coalesce(c.finished_at, c.started_at), EXCLUDED.started_at);
END;
$$;

CREATE FUNCTION keybrake_batch(
	f_call_ids    text[],
	f_modes       text[],
	f_costs       bigint[],
	f_states      text[],
	f_statuses    integer[],
	f_amounts     bigint[],
	f_currencies  text[],
	f_txn_ids     text[],
	f_outcomes    text[],
	f_nows        timestamptz[],
	r_call_ids    text[],
	r_key_ids     text[],
	r_vendors     text[],
	r_methods     text[],
	r_paths       text[],
	r_endpoints   text[],
	r_estimates   bigint[],
	r_minimums    bigint[],
	r_idems       text[],
	r_prints      text[],
	r_windows     bigint[],
	r_objects     text[],
	r_nows        timestamptz[],
	r_moves       boolean[],
	r_onces       text[],
	r_claims      text[],
	r_tags        text[]
) RETURNS TABLE (
	o_kind      text,
	o_idx       integer,
	o_outcome   text,
	o_replay_of text,
	o_run_label text,
	o_remaining bigint,
	o_held      bigint,
	o_state     text,
	o_rule      text,
	o_retry_us  bigint,
	o_tag       text
) LANGUAGE plpgsql AS $$
DECLARE
	i             integer;
	j             integer;
	v_keys        text[];
	v_moving      text[];
	v_order       integer[];
	v_n           integer;
	v_pos         integer;
	v_key         text;
	v_found       boolean;
	k             vault_keys%ROWTYPE;
	tk            api_tokens%ROWTYPE;
	v_tok_read    boolean;
	v_budget      boolean;
	v_dirty       boolean;
	v_free_n      integer;
	-- The key's days met in this batch: their counters as they stand now,
	-- what the batch reserved on each, and the token's for that day.
	v_days        date[];
	v_dspent      bigint[];
	v_dres        bigint[];
	v_dadd        bigint[];
	v_tspent      bigint[];
	v_tres        bigint[];
	v_di          integer;
	v_day         date;
	d_spent       bigint;
	d_reserved    bigint;
	t_spent       bigint;
	t_reserved    bigint;
	v_free        boolean;
	v_outcome     text;
	v_replay      text;
	v_held        bigint;
	v_state       text;
	v_used_budget boolean;
	o_hash        text;
	o_cstate      text;
	v_key_room    bigint;
	v_tok_room    bigint;
	v_headroom    bigint;
	fc            calls%ROWTYPE;
	v_cost        bigint;
	v_rule        text;
	v_retry       bigint;
	v_tag         text;
	v_counted     boolean;
	-- The rate slots the batch took and has not written yet (see above).
	s_keys        text[] := '{}';
	s_slots       integer[] := '{}';
	s_ats         timestamptz[] := '{}';
	-- What the finishes move, one element per finish that moves money.
	fk_ids        text[] := '{}';
	fk_days       date[] := '{}';
	fk_spent      bigint[] := '{}';
	fk_res        bigint[] := '{}';
	-- The finished calls as they were before the batch finished them.
	v_before      calls[] := '{}';
	-- The calls the batch wrote: the finished ones, then the new ones.
	v_written     text[] := '{}';
	-- The refusals, which the trigger counts.
	v_by_trigger  text[] := '{}';
BEGIN
	-- The batch writes its calls' daily rollups itself, below.
	PERFORM set_config('keybrake.batch_rolls', 'on', true);
	IF coalesce(cardinality(r_call_ids), 0) = 0 THEN
		PERFORM set_config('synchronous_commit', 'off', true);
	END IF;

	-- The keys whose counters the batch moves: those of its spend
	-- reservations, and of its finishes that move money. A zero-cost call
	-- takes no key lock here either (migration 0002). (Every lookup of
	-- calls goes by call_id = ANY (array), an index scan whatever the plan;
	-- a join of calls with an unnested array may be planned as a scan of
	-- the whole table.)
	v_moving := ARRAY(SELECT f.call_id FROM unnest(f_call_ids, f_modes, f_costs) AS f(call_id, mode, cost)
		WHERE f.mode = 'settle' AND f.cost <> 0);
	v_keys := ARRAY(
		SELECT u.key_id FROM unnest(r_key_ids, r_estimates, r_minimums, r_idems, r_windows, r_moves) AS u(key_id, est, mn, idem, win, moves)
			WHERE NOT (u.est = 0 AND u.mn = 0 AND NOT (u.idem <> '' AND u.win > 0) AND NOT u.moves)
		UNION
		SELECT c.key_id FROM calls c
			WHERE c.call_id = ANY (f_call_ids) AND (c.reserved <> 0 OR c.cost <> 0 OR c.rule_counted OR c.call_id = ANY (v_moving)));
	PERFORM 1 FROM vault_keys vk WHERE vk.id = ANY (v_keys) ORDER BY vk.id FOR NO KEY UPDATE;
	PERFORM 1 FROM api_tokens t
		WHERE t.id IN (SELECT vk.token_id FROM vault_keys vk WHERE vk.id = ANY (v_keys) AND vk.token_id <> '')
		ORDER BY t.id FOR UPDATE;

	-- Finishes: each call as keybrake_finish does it (a call no longer open
	-- is left alone, so a repeated settlement counts once), the counters
	-- they move summed per key and per key and day and written once each.
	o_kind := 'finish';
	o_outcome := '';
	o_replay_of := '';
	o_run_label := '';
	o_remaining := 0;
	o_held := 0;
	o_rule := '';
	o_retry_us := 0;
	o_tag := '';
	PERFORM 1 FROM calls c WHERE c.call_id = ANY (f_call_ids) ORDER BY c.call_id FOR UPDATE;
	FOR i IN 1 .. coalesce(cardinality(f_call_ids), 0) LOOP
		o_idx := i;
		SELECT * INTO fc FROM calls c WHERE c.call_id = f_call_ids[i];
		IF NOT FOUND THEN
			o_state := 'not_found';
		ELSIF fc.cost_state NOT IN ('reserved', 'unknown', 'unpriced') THEN
			o_state := '';
		ELSE
			v_held := CASE WHEN fc.cost_state IN ('reserved', 'unknown') THEN fc.reserved ELSE 0 END;
			d_spent := 0;
			d_reserved := 0;
			CASE f_modes[i]
			WHEN 'settle' THEN
				v_cost := f_costs[i];
				o_state := f_states[i];
				d_reserved := -v_held;
				d_spent := f_costs[i] - fc.cost;
			WHEN 'release' THEN
				v_cost := 0;
				o_state := 'released';
				d_reserved := -v_held;
				d_spent := -fc.cost;
			WHEN 'unknown' THEN
				v_cost := fc.cost;
				o_state := CASE WHEN fc.cost_state = 'reserved' THEN 'unknown' ELSE fc.cost_state END;
			ELSE
				RAISE EXCEPTION 'unknown finish mode %', f_modes[i] USING ERRCODE = 'invalid_parameter_value';
			END CASE;
			IF d_spent <> 0 OR d_reserved <> 0 THEN
				fk_ids := fk_ids || fc.key_id;
				fk_days := fk_days || fc.day;
				fk_spent := fk_spent || d_spent;
				fk_res := fk_res || d_reserved;
			END IF;
			v_before := v_before || fc;
			UPDATE calls SET
				cost = v_cost,
				cost_state = o_state,
				status_code = f_statuses[i],
				vendor_amount = COALESCE(f_amounts[i], vendor_amount),
				vendor_currency = CASE WHEN f_currencies[i] <> '' THEN f_currencies[i] ELSE vendor_currency END,
				vendor_txn_id = CASE WHEN f_txn_ids[i] <> '' THEN f_txn_ids[i] ELSE vendor_txn_id END,
				outcome = CASE WHEN f_outcomes[i] <> '' THEN f_outcomes[i] ELSE outcome END,
				finished_at = f_nows[i]
			WHERE call_id = f_call_ids[i];
		END IF;
		RETURN NEXT;
	END LOOP;
	IF cardinality(fk_ids) > 0 THEN
		UPDATE vault_keys vk SET spent = vk.spent + x.ds, reserved = vk.reserved + x.dr
			FROM (SELECT u.key_id, sum(u.ds)::bigint AS ds, sum(u.dr)::bigint AS dr
				FROM unnest(fk_ids, fk_spent, fk_res) AS u(key_id, ds, dr) GROUP BY u.key_id) x
			WHERE vk.id = x.key_id AND (x.ds <> 0 OR x.dr <> 0);
		UPDATE key_days kd SET spent = kd.spent + x.ds, reserved = kd.reserved + x.dr
			FROM (SELECT u.key_id, u.day, sum(u.ds)::bigint AS ds, sum(u.dr)::bigint AS dr
				FROM unnest(fk_ids, fk_days, fk_spent, fk_res) AS u(key_id, day, ds, dr) GROUP BY u.key_id, u.day) x
			WHERE kd.key_id = x.key_id AND kd.day = x.day AND (x.ds <> 0 OR x.dr <> 0);
	END IF;

	o_kind := 'reserve';
	o_state := '';
	v_order := ARRAY(SELECT u.ord::integer FROM unnest(r_key_ids) WITH ORDINALITY AS u(key_id, ord) ORDER BY u.key_id, u.ord);
	v_n := coalesce(cardinality(v_order), 0);
	v_pos := 1;
	WHILE v_pos <= v_n LOOP
		v_key := r_key_ids[v_order[v_pos]];
		SELECT * INTO k FROM vault_keys WHERE id = v_key;
		v_found := FOUND;
		v_tok_read := false;
		v_budget := false;
		v_dirty := false;
		v_free_n := 0;
		v_days := '{}';
		v_dspent := '{}';
		v_dres := '{}';
		v_dadd := '{}';
		v_tspent := '{}';
		v_tres := '{}';
		-- Every call of this key, in arrival order.
		WHILE v_pos <= v_n AND r_key_ids[v_order[v_pos]] = v_key LOOP
			i := v_order[v_pos];
			v_pos := v_pos + 1;
			o_idx := i;
			IF NOT v_found THEN
				o_rule := '';
				o_retry_us := 0;
				o_tag := '';
				o_outcome := 'not_found';
				o_replay_of := '';
				o_run_label := '';
				o_remaining := 0;
				o_held := 0;
				RETURN NEXT;
				CONTINUE;
			END IF;
			v_day := (r_nows[i] AT TIME ZONE 'UTC')::date;
			v_di := array_position(v_days, v_day);
			IF v_di IS NULL THEN
				SELECT d.spent, d.reserved INTO d_spent, d_reserved
					FROM key_days d WHERE d.key_id = k.id AND d.day = v_day;
				v_days := v_days || v_day;
				v_di := cardinality(v_days);
				v_dspent[v_di] := COALESCE(d_spent, 0);
				v_dres[v_di] := COALESCE(d_reserved, 0);
				v_dadd[v_di] := 0;
				v_tspent[v_di] := NULL;
				v_tres[v_di] := NULL;
			END IF;

			v_free := r_estimates[i] = 0 AND r_minimums[i] = 0 AND NOT (r_idems[i] <> '' AND r_windows[i] > 0) AND NOT r_moves[i];
			v_rule := '';
			v_retry := 0;
			v_counted := false;
			v_tag := '';
			v_held := 0;
			v_state := 'none';
			v_replay := '';
			v_used_budget := false;
			IF k.vendor <> r_vendors[i] THEN
				v_outcome := 'wrong_vendor';
			ELSIF k.revoked_at IS NOT NULL THEN
				v_outcome := 'revoked';
			ELSIF r_nows[i] >= k.expires_at THEN
				v_outcome := 'expired';
			ELSIF r_endpoints[i] <> '' AND NOT (r_endpoints[i] = ANY (k.allowed_endpoints)) THEN
				v_outcome := 'endpoint_denied';
			ELSIF v_free THEN
				v_outcome := 'forwarded';
				v_state := 'reserved';
				v_free_n := v_free_n + 1;
			ELSE
				v_dirty := true;
				IF r_idems[i] <> '' AND r_windows[i] > 0 THEN
					-- The original, as keybrake_reserve finds it; the
					-- batch's earlier calls are in calls already.
					o_hash := NULL;
					o_cstate := NULL;
					SELECT c.call_id, c.request_hash, c.cost_state INTO v_replay, o_hash, o_cstate FROM calls c
						WHERE c.key_id = k.id AND c.idempotency_key = r_idems[i] AND c.idempotency_key <> '' AND c.request_hash <> ''
						  AND c.replay_of = '' AND c.cost_state IN ('reserved', 'settled', 'unpriced')
						  AND c.started_at > r_nows[i] - make_interval(secs => r_windows[i] / 1000000.0)
						ORDER BY c.seq LIMIT 1;
					v_replay := COALESCE(v_replay, '');
				END IF;

				IF v_replay <> '' AND o_hash <> r_prints[i] THEN
					v_outcome := 'idempotency_mismatch';
				ELSIF v_replay <> '' AND o_cstate = 'reserved' THEN
					v_outcome := 'idempotency_in_flight';
				ELSIF v_replay <> '' THEN
					v_outcome := 'idempotent_replay';
					k.calls := k.calls + 1;
				ELSE
					IF r_moves[i] AND (k.once_per <> '' OR k.rule_calls >= k.max_calls OR k.rate_taken >= k.rate_calls) THEN
						IF cardinality(s_keys) > 0 THEN
							INSERT INTO key_rate_slots (key_id, slot, at) SELECT * FROM unnest(s_keys, s_slots, s_ats);
							s_keys := '{}';
							s_slots := '{}';
							s_ats := '{}';
						END IF;
						SELECT x.rule, x.retry_us INTO v_rule, v_retry FROM keybrake_rule_denied(k, r_onces[i], r_claims[i], r_nows[i], r_objects[i]) x;
					END IF;
				END IF;
				IF v_rule <> '' THEN
					v_outcome := 'rule_denied';
				ELSIF v_replay = '' THEN
					IF NOT v_tok_read THEN
						v_tok_read := true;
						IF k.token_id <> '' THEN
							-- Locked above; its totals include what the
							-- batch's other keys have written.
							SELECT * INTO tk FROM api_tokens WHERE id = k.token_id;
							v_budget := FOUND AND (tk.daily_cap IS NOT NULL OR tk.total_cap IS NOT NULL);
						END IF;
					END IF;
					IF v_budget AND v_tspent[v_di] IS NULL THEN
						SELECT t.spent, t.reserved INTO t_spent, t_reserved
							FROM token_days t WHERE t.token_id = tk.id AND t.day = v_day;
						v_tspent[v_di] := COALESCE(t_spent, 0);
						v_tres[v_di] := COALESCE(t_reserved, 0);
					END IF;
					v_used_budget := v_budget;
					v_key_room := LEAST(
						CASE WHEN k.total_cap IS NOT NULL THEN k.total_cap - (k.spent + k.reserved) END,
						CASE WHEN k.daily_cap IS NOT NULL THEN k.daily_cap - (v_dspent[v_di] + v_dres[v_di]) END);
					v_tok_room := NULL;
					IF v_budget THEN
						v_tok_room := LEAST(
							CASE WHEN tk.total_cap IS NOT NULL THEN tk.total_cap - (tk.spent + tk.reserved) END,
							CASE WHEN tk.daily_cap IS NOT NULL THEN tk.daily_cap - (v_tspent[v_di] + v_tres[v_di]) END);
					END IF;
					v_headroom := LEAST(v_key_room, v_tok_room);
					IF v_headroom IS NULL OR r_estimates[i] <= v_headroom THEN
						v_held := r_estimates[i];
					ELSIF r_minimums[i] > 0 AND r_minimums[i] <= v_headroom THEN
						v_held := v_headroom;
					END IF;
					IF v_held = 0 AND r_estimates[i] > 0 THEN
						IF v_key_room IS NULL OR r_estimates[i] <= v_key_room OR (r_minimums[i] > 0 AND r_minimums[i] <= v_key_room) THEN
							v_outcome := 'budget_hit';
						ELSE
							v_outcome := 'cap_hit';
						END IF;
						k.cap_hits := k.cap_hits + 1;
					ELSE
						v_outcome := 'forwarded';
						v_state := 'reserved';
						k.calls := k.calls + 1;
						k.reserved := k.reserved + v_held;
						v_dres[v_di] := v_dres[v_di] + v_held;
						v_dadd[v_di] := v_dadd[v_di] + v_held;
						IF v_budget THEN
							tk.reserved := tk.reserved + v_held;
							v_tres[v_di] := v_tres[v_di] + v_held;
						END IF;
						IF r_moves[i] AND (k.max_calls IS NOT NULL OR k.rate_calls IS NOT NULL OR k.once_per <> '') THEN
							IF k.once_per = '' AND (k.rate_calls IS NULL OR k.rate_taken < k.rate_calls) THEN
								-- keybrake_rule_take's counting, its new slot
								-- kept for the INSERT at the end.
								k.rule_calls := k.rule_calls + 1;
								IF k.rate_calls IS NOT NULL THEN
									k.rate_last := GREATEST(r_nows[i], k.rate_last);
									s_keys := s_keys || k.id;
									s_slots := s_slots || k.rate_taken::integer;
									s_ats := s_ats || k.rate_last;
									k.rate_taken := k.rate_taken + 1;
								END IF;
							ELSE
								k := keybrake_rule_take(k, r_call_ids[i], r_claims[i], r_nows[i]);
							END IF;
							v_counted := true;
						END IF;
					END IF;
				END IF;
			END IF;

			o_remaining := LEAST(
				CASE WHEN k.total_cap IS NOT NULL THEN k.total_cap - (k.spent + k.reserved) END,
				CASE WHEN k.daily_cap IS NOT NULL THEN k.daily_cap - (v_dspent[v_di] + v_dres[v_di]) END,
				CASE WHEN v_used_budget AND tk.total_cap IS NOT NULL THEN tk.total_cap - (tk.spent + tk.reserved) END,
				CASE WHEN v_used_budget AND tk.daily_cap IS NOT NULL THEN tk.daily_cap - (v_tspent[v_di] + v_tres[v_di]) END);
			o_remaining := GREATEST(COALESCE(o_remaining, 0), 0);

			IF v_state = 'none' AND v_replay = '' THEN
				-- A refusal, counted into its minute's bucket as
				-- keybrake_reserve counts it. The trigger counts it in
				-- the rollups, whether it starts the bucket or adds to
				-- one an earlier transaction wrote; the end of the batch
				-- leaves it out.
				PERFORM set_config('keybrake.batch_rolls', '', true);
				INSERT INTO calls AS c (call_id, key_id, run_label, vendor, method, path, endpoint,
						outcome, status_code, reserved, idempotency_key, request_hash, replay_of, vendor_txn_id,
						cost_state, day, started_at, rule, rule_counted, refusal_bucket)
					VALUES (r_call_ids[i], k.id, k.run_label, r_vendors[i], r_methods[i], r_paths[i], r_endpoints[i],
						v_outcome, keybrake_refusal_status(v_outcome, v_rule),
						v_held, r_idems[i], r_prints[i], v_replay, r_objects[i], v_state, v_day, r_nows[i], v_rule, v_counted,
						keybrake_refusal_bucket(k.id, r_vendors[i], v_outcome, v_rule, r_nows[i]))
					ON CONFLICT (refusal_bucket) WHERE refusal_bucket IS NOT NULL DO UPDATE SET
						call_count = c.call_count + 1,
						finished_at = GREATEST(coalesce(c.finished_at, c.started_at), EXCLUDED.started_at);
				PERFORM set_config('keybrake.batch_rolls', 'on', true);
				v_by_trigger := v_by_trigger || r_call_ids[i];
			ELSE
				-- A call let go ahead (or answered as a replay) keeps the
				-- tag written on its request, or its idempotent request's
				-- first tagged attempt's (keybrake_tag_calls says which;
				-- the batch's own earlier calls are in calls already).
				IF r_tags[i] <> '' THEN
					v_tag := NULL;
					IF r_idems[i] <> '' AND r_prints[i] <> '' THEN
						SELECT o.tag INTO v_tag FROM calls o
							WHERE o.key_id = k.id AND o.idempotency_key = r_idems[i] AND o.request_hash = r_prints[i]
							  AND o.replay_of = '' AND o.tag <> '' AND o.call_id <> r_call_ids[i]
							  AND o.started_at > r_nows[i] - r_windows[i] * interval '1 microsecond'
							ORDER BY o.started_at, o.seq LIMIT 1;
					END IF;
					v_tag := COALESCE(v_tag, r_tags[i]);
				END IF;
				INSERT INTO calls (call_id, key_id, run_label, vendor, method, path, endpoint,
						outcome, status_code, reserved, idempotency_key, request_hash, replay_of, vendor_txn_id,
						cost_state, day, started_at, rule, rule_counted, tag)
					VALUES (r_call_ids[i], k.id, k.run_label, r_vendors[i], r_methods[i], r_paths[i], r_endpoints[i],
						v_outcome, keybrake_refusal_status(v_outcome, v_rule),
						v_held, r_idems[i], r_prints[i], v_replay, r_objects[i], v_state, v_day, r_nows[i], v_rule, v_counted, v_tag);
			END IF;
			o_rule := v_rule;
			o_retry_us := v_retry;
			o_tag := v_tag;
			o_outcome := v_outcome;
			o_replay_of := v_replay;
			o_run_label := k.run_label;
			o_held := v_held;
			RETURN NEXT;
		END LOOP;

		-- The key's counters, once for the batch; the triggers of 0006 move
		-- its token's.
		IF v_found AND v_dirty THEN
			UPDATE vault_keys SET reserved = k.reserved, calls = k.calls, cap_hits = k.cap_hits, rule_calls = k.rule_calls,
					rate_taken = k.rate_taken, rate_last = k.rate_last
				WHERE id = k.id;
			FOR j IN 1 .. cardinality(v_days) LOOP
				INSERT INTO key_days AS d (key_id, day, spent, reserved)
					VALUES (k.id, v_days[j], 0, v_dadd[j])
					ON CONFLICT (key_id, day) DO UPDATE SET reserved = d.reserved + EXCLUDED.reserved;
			END LOOP;
		END IF;
		-- Its zero-cost calls, counted into one shard row.
		IF v_free_n > 0 THEN
			INSERT INTO key_call_shards AS s (key_id, shard, calls)
				VALUES (k.id, (random() * 15)::smallint, v_free_n)
				ON CONFLICT (key_id, shard) DO UPDATE SET calls = s.calls + EXCLUDED.calls;
		END IF;
	END LOOP;
	IF cardinality(s_keys) > 0 THEN
		INSERT INTO key_rate_slots (key_id, slot, at) SELECT * FROM unnest(s_keys, s_slots, s_ats);
	END IF;

	-- The rollups: what the calls written (the finished ones as they are
	-- now, and the new ones) count, less what the finished ones counted
	-- before. The ids go in a variable: "call_id = ANY (variable)" is an
	-- index scan in every plan, while an expression there let a cached
	-- generic plan scan the whole table.
	v_written := ARRAY(SELECT b.call_id FROM unnest(v_before) AS b)
		|| ARRAY(SELECT x FROM unnest(r_call_ids) AS x WHERE NOT (x = ANY (v_by_trigger)));
	PERFORM keybrake_roll_rows(ARRAY(SELECT c FROM calls c WHERE c.call_id = ANY (v_written)), v_before);
	PERFORM set_config('keybrake.batch_rolls', '', true);
END;
$$;

-- CREATE OR REPLACE resets a function's settings: the batch plans without
-- sequential scans again, as 0015 set (see there).
ALTER FUNCTION keybrake_batch(text[], text[], bigint[], text[], integer[], bigint[], text[], text[], text[], timestamptz[],
	text[], text[], text[], text[], text[], text[], bigint[], bigint[], text[], text[], bigint[], text[], timestamptz[],
	boolean[], text[], text[], text[]) SET enable_seqscan = off;

-- keybrake_tag_calls records the tags of calls a reservation let go ahead
-- (ledger/postgres/tag.go says what it does; the statement is the one it
-- sent before).
CREATE FUNCTION keybrake_tag_calls(p_call_ids text[], p_tags text[], p_windows bigint[])
	RETURNS TABLE (call_id text, tag text) LANGUAGE sql SET enable_seqscan = off AS $$
	UPDATE calls AS c SET tag = COALESCE((
			SELECT o.tag FROM calls o
			WHERE c.idempotency_key <> '' AND c.request_hash <> ''
			  AND o.key_id = c.key_id AND o.idempotency_key = c.idempotency_key
			  AND o.request_hash = c.request_hash AND o.replay_of = '' AND o.tag <> ''
			  AND o.call_id <> c.call_id AND o.started_at > c.started_at - t.window_us * interval '1 microsecond'
			ORDER BY o.started_at, o.seq LIMIT 1), t.tag)
		FROM unnest(p_call_ids, p_tags, p_windows) AS t(call_id, tag, window_us)
		WHERE c.call_id = ANY (p_call_ids) AND c.call_id = t.call_id AND (c.cost_state = 'reserved' OR c.replay_of <> '')
		RETURNING c.call_id, c.tag;
$$;

-- CREATE OR REPLACE reset keybrake_reserve's settings (see 0015).
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
		WHERE p.proname = 'keybrake_reserve' AND p.pronamespace = current_schema()::regnamespace
	LOOP
		EXECUTE format('ALTER FUNCTION %s SET enable_seqscan = off', f);
	END LOOP;
END;
$$;
