-- 0012: approvals (issue 19). A key's approval rule
-- is stored with it as JSON ('' for none). An approval is a call held for a
-- person's decision; 'expired' is never stored (a pending or approved row
-- past expires_at reads as expired). A decision is announced on the
-- keybrake_approvals channel (NOTIFY) so the node holding the call wakes.
ALTER TABLE vault_keys ADD COLUMN approval text NOT NULL DEFAULT '';

CREATE TABLE approvals (
	id           text        PRIMARY KEY,
	key_id       text        NOT NULL,
	token_id     text        NOT NULL DEFAULT '',
	run_label    text        NOT NULL DEFAULT '',
	vendor       text        NOT NULL,
	method       text        NOT NULL,
	path         text        NOT NULL,
	endpoint     text        NOT NULL DEFAULT '',
	subjects     text        NOT NULL DEFAULT '',
	estimate     bigint      NOT NULL,
	request_hash text        NOT NULL,
	call_id      text        NOT NULL,
	status       text        NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
	decided_by   text        NOT NULL DEFAULT '',
	reason       text        NOT NULL DEFAULT '',
	decided_at   timestamptz,
	requested_at timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL,
	consumed_by  text        NOT NULL DEFAULT '',
	consumed_at  timestamptz
);

CREATE INDEX approvals_by_status ON approvals (status, requested_at DESC);
CREATE INDEX approvals_consumable ON approvals (key_id, request_hash) WHERE status = 'approved';
CREATE INDEX approvals_by_call ON approvals (call_id);
CREATE INDEX approvals_by_consumer ON approvals (consumed_by) WHERE consumed_by <> '';
