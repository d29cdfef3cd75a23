-- 0004: the audit's vendor_txn_id filter ("which run made this charge?")
-- looks a transaction id up without knowing its vendor; calls_txn_idx leads
-- with the vendor, so it gets an index of its own, in the audit order.
CREATE INDEX calls_vendor_txn_any_idx ON calls (vendor_txn_id, started_at, seq)
	WHERE vendor_txn_id <> '';
