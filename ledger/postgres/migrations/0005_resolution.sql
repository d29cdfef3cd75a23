-- 0005: a call resolved by an operator or the reconciler records who, when
-- and why (ledger.Store.Resolve).
ALTER TABLE calls
	ADD COLUMN resolved_by    text NOT NULL DEFAULT '',
	ADD COLUMN resolved_at    timestamptz,
	ADD COLUMN resolve_reason text NOT NULL DEFAULT '';
