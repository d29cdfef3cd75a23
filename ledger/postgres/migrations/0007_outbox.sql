-- 0007: the alert outbox. One row per event and webhook; (webhook,
-- dedupe_key) is unique, so an event for a threshold crossing is stored
-- once however many nodes see the crossing. The sender claims due rows with
-- FOR UPDATE SKIP LOCKED and a lease (next_attempt_at moved forward).

CREATE TABLE alert_outbox (
	id              text        PRIMARY KEY,
	webhook         text        NOT NULL,
	dedupe_key      text        NOT NULL,
	type            text        NOT NULL,
	payload         bytea       NOT NULL,
	created_at      timestamptz NOT NULL,
	attempts        integer     NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL,
	delivered_at    timestamptz,
	gave_up_at      timestamptz,
	last_error      text        NOT NULL DEFAULT '',
	UNIQUE (webhook, dedupe_key)
);

CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at, created_at)
	WHERE delivered_at IS NULL AND gave_up_at IS NULL;
