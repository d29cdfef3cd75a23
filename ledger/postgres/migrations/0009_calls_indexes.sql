-- 0009: fewer indexes on calls. A settlement rewrites its call's row with
-- a new cost_state and, usually, a vendor_txn_id: both are indexed
-- (calls_pending_idx, the vendor_txn_id indexes), so it is never a HOT
-- update and every index of calls gets an entry for the new row version.
-- Two of them are not needed: calls_txn_idx (vendor, vendor_txn_id) serves
-- no query any more, and ObjectExposure (key, transaction id) finds its
-- few rows through calls_vendor_txn_any_idx (vendor_txn_id first), as the
-- audit's vendor_txn_id filter does.
DROP INDEX calls_txn_idx;
DROP INDEX calls_key_txn_idx;
