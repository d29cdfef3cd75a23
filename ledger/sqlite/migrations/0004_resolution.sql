-- 0004: a call resolved by an operator or the reconciler records who, when
-- and why (ledger.Store.Resolve). resolved_at is Unix nanoseconds.
ALTER TABLE calls ADD COLUMN resolved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN resolved_at INTEGER;
ALTER TABLE calls ADD COLUMN resolve_reason TEXT NOT NULL DEFAULT '';
