-- 0011: fewer index entries written per call (issue 20: spend on a ledger
-- of 10 million calls ran at 0.79-0.90 of an empty one, the difference all
-- in the one writer's B-tree work).
--
-- A call's vendor transaction id (pi_…, SM…) is random, so each index on
-- it takes its entry at a random leaf: on a small ledger that leaf is in
-- the cache, on a big one it is read from the file and rewritten into the
-- WAL for the one entry. The settlement wrote three such entries, one in
-- each of calls_by_vendor_txn (vendor, txn), calls_by_key_txn (key, txn)
-- and calls_by_any_vendor_txn (txn, started_at, seq). Transaction ids are
-- unique in practice, so the last one answers each of their lookups (the
-- audit's vendor_txn_id filter, with or without a vendor, and a key's
-- exposure to one object, which now states "vendor_txn_id <> ''" to use
-- it); the other two go, as Postgres's went in its 0009.
DROP INDEX calls_by_vendor_txn;
DROP INDEX calls_by_key_txn;

-- calls_by_cost_state (vendor, cost_state, started_at, seq) serves only
-- PendingCalls: the reservations a dead node left (reserved) and prices
-- still provisional (unpriced), which the sweeper and the reconciler page
-- through. It held every call, and each settlement moved an entry within
-- it; now it holds only the calls in those states (and unknown), so it
-- stays as small as the work in flight: an entry added at the
-- reservation, removed at the settlement. The audit's cost_state filter
-- keeps calls_by_state. Postgres's calls_pending_idx has been partial
-- from the start.
DROP INDEX calls_by_cost_state;
CREATE INDEX calls_pending ON calls (vendor, cost_state, started_at, seq)
    WHERE cost_state IN ('reserved', 'unpriced', 'unknown');
