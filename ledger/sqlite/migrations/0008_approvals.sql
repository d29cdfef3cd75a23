-- 0008: approvals (issue 19). A key's approval rule
-- is stored with it as JSON ('' for none). An approval is a call held for a
-- person's decision; 'expired' is never stored (a pending or approved row
-- past expires_at reads as expired).
ALTER TABLE keys ADD COLUMN approval TEXT NOT NULL DEFAULT '';

CREATE TABLE approvals (
    id           TEXT    NOT NULL PRIMARY KEY,
    key_id       TEXT    NOT NULL,
    token_id     TEXT    NOT NULL DEFAULT '',
    run_label    TEXT    NOT NULL DEFAULT '',
    vendor       TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    endpoint     TEXT    NOT NULL DEFAULT '',
    subjects     TEXT    NOT NULL DEFAULT '',
    estimate     INTEGER NOT NULL,
    request_hash TEXT    NOT NULL,
    call_id      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    decided_by   TEXT    NOT NULL DEFAULT '',
    reason       TEXT    NOT NULL DEFAULT '',
    decided_at   INTEGER,
    requested_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    consumed_by  TEXT    NOT NULL DEFAULT '',
    consumed_at  INTEGER
) STRICT;

CREATE INDEX approvals_by_status ON approvals (status, requested_at);
CREATE INDEX approvals_consumable ON approvals (key_id, request_hash) WHERE status = 'approved';
CREATE INDEX approvals_by_call ON approvals (call_id);
CREATE INDEX approvals_by_consumer ON approvals (consumed_by) WHERE consumed_by <> '';
