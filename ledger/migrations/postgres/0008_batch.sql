-- 0008: the group commit (ledger.Coalescer). A node's reservations and
-- settlements queued while its previous batch was in flight go in one call
-- of keybrake_batch: one round trip, one transaction, one WAL flush.
--
-- Lock order, the same in every batch on every node: every key row the batch
-- writes (the keys of its reservations and of its finished calls), in id
-- order, then every token row of theirs, in id order; a call's row after
-- its key. keybrake_reserve and keybrake_finish then only take locks the
-- batch holds already, so two nodes' batches cannot deadlock, and one key's
-- reservations in a batch are decided one after the other in arrival order
-- under one hold of its lock.
--
-- Finishes go first, so a reservation of the batch (a client's retry with
-- the same idempotency key) sees its original settled. An unknown call or
-- key gets the outcome 'not_found' and writes nothing; the others commit.
-- A batch with no reservation in it commits without waiting for the WAL
-- flush, as keybrake_finish's callers did (a lost settlement leaves its call
-- reserved, counted against the cap, for the reconciler).
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
	r_nows        timestamptz[]
) RETURNS TABLE (
	o_kind      text,
	o_idx       integer,
	o_outcome   text,
	o_replay_of text,
	o_run_label text,
	o_remaining bigint,
	o_held      bigint,
	o_state     text
) LANGUAGE plpgsql AS $$
DECLARE
	i      integer;
	v_keys   text[];
	v_moving text[];
	v_seed double precision;
BEGIN
	IF coalesce(cardinality(r_call_ids), 0) = 0 THEN
		PERFORM set_config('synchronous_commit', 'off', true);
	END IF;

	-- The keys whose counters the batch moves: those of its spend
	-- reservations, and of its finishes that move money. A zero-cost call
	-- takes no key lock here either (migration 0002).
	-- (Every lookup of calls goes by call_id = ANY (array), an index scan
	-- whatever the plan; a join of calls with an unnested array may be
	-- planned as a scan of the whole table.)
	v_moving := ARRAY(SELECT f.call_id FROM unnest(f_call_ids, f_modes, f_costs) AS f(call_id, mode, cost)
		WHERE f.mode = 'settle' AND f.cost <> 0);
	v_keys := ARRAY(
		SELECT u.key_id FROM unnest(r_key_ids, r_estimates, r_minimums, r_idems, r_windows) AS u(key_id, est, mn, idem, win)
			WHERE NOT (u.est = 0 AND u.mn = 0 AND NOT (u.idem <> '' AND u.win > 0))
		UNION
		SELECT c.key_id FROM calls c
			WHERE c.call_id = ANY (f_call_ids) AND (c.reserved <> 0 OR c.cost <> 0 OR c.call_id = ANY (v_moving)));
	PERFORM 1 FROM vault_keys k WHERE k.id = ANY (v_keys) ORDER BY k.id FOR NO KEY UPDATE;
	PERFORM 1 FROM api_tokens t
		WHERE t.id IN (SELECT k.token_id FROM vault_keys k WHERE k.id = ANY (v_keys) AND k.token_id <> '')
		ORDER BY t.id FOR UPDATE;
	-- keybrake_reserve counts a zero-cost call into a random shard row of
	-- its key; reseeded with the same seed before each call, every
	-- zero-cost call of the batch on one key picks the same shard, so the
	-- batch holds at most one shard row per key, taken in key order like
	-- the rest.
	v_seed := (txid_current() % 1999) / 1999.0;

	o_kind := 'finish';
	o_outcome := '';
	o_replay_of := '';
	o_run_label := '';
	o_remaining := 0;
	o_held := 0;
	FOR i IN 1 .. coalesce(cardinality(f_call_ids), 0) LOOP
		o_idx := i;
		IF NOT EXISTS (SELECT 1 FROM calls c WHERE c.call_id = f_call_ids[i]) THEN
			o_state := 'not_found';
		ELSE
			o_state := COALESCE(keybrake_finish(f_call_ids[i], f_modes[i], f_costs[i], f_states[i], f_statuses[i],
				f_amounts[i], f_currencies[i], f_txn_ids[i], f_outcomes[i], f_nows[i]), '');
		END IF;
		RETURN NEXT;
	END LOOP;

	o_kind := 'reserve';
	o_state := '';
	FOR i IN SELECT u.ord FROM unnest(r_key_ids) WITH ORDINALITY AS u(key_id, ord) ORDER BY u.key_id, u.ord LOOP
		o_idx := i;
		IF NOT EXISTS (SELECT 1 FROM vault_keys k WHERE k.id = r_key_ids[i]) THEN
			o_outcome := 'not_found';
			o_replay_of := '';
			o_run_label := '';
			o_remaining := 0;
			o_held := 0;
		ELSE
			PERFORM setseed(v_seed);
			SELECT x.outcome, x.replay_of, x.run_label, x.remaining, x.held
				INTO o_outcome, o_replay_of, o_run_label, o_remaining, o_held
				FROM keybrake_reserve(r_call_ids[i], r_key_ids[i], r_vendors[i], r_methods[i], r_paths[i],
					r_endpoints[i], r_estimates[i], r_minimums[i], r_idems[i], r_prints[i], r_windows[i],
					r_objects[i], r_nows[i]) x;
		END IF;
		RETURN NEXT;
	END LOOP;
END;
$$;
