-- 0006: the alert outbox. One row per event and webhook; (webhook,
-- dedupe_key) is unique, so an event for a threshold crossing is stored
-- once. The sender claims due rows by moving next_attempt_at forward (a
-- lease) in the one writer's transaction.
CREATE TABLE alert_outbox (
    id              TEXT    NOT NULL PRIMARY KEY,
    webhook         TEXT    NOT NULL,
    dedupe_key      TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    gave_up_at      INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    UNIQUE (webhook, dedupe_key)
) STRICT;

CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at, created_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
