-- 0001: keys, per-day counters and call records.
--
-- Money is BIGINT micro-dollars (ledger's money.Micros), never numeric or
-- float. Times are timestamptz written from the caller's clock: the ledger
-- never reads now() so tests and reconcilers can inject time.

CREATE TABLE vault_keys (
	id                text        PRIMARY KEY,
	-- SHA-256 of the secret; the secret itself is never stored.
	hash              bytea       NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
	vendor            text        NOT NULL,
	daily_cap         bigint      CHECK (daily_cap >= 0),
	total_cap         bigint      CHECK (total_cap >= 0),
	allowed_endpoints text[]      NOT NULL DEFAULT '{}',
	run_label         text        NOT NULL DEFAULT '',
	-- json, not jsonb: metadata is given back byte for byte as it came.
	metadata          json,
	created_at        timestamptz NOT NULL,
	expires_at        timestamptz NOT NULL,
	revoked_at        timestamptz,
	-- Running totals, kept on the key row so that Reserve reads and writes
	-- one locked row instead of summing calls.
	spent             bigint      NOT NULL DEFAULT 0,
	reserved          bigint      NOT NULL DEFAULT 0,
	calls             bigint      NOT NULL DEFAULT 0,
	cap_hits          bigint      NOT NULL DEFAULT 0
);

-- ListKeys pages newest first, optionally within one run or vendor.
CREATE INDEX vault_keys_created_idx ON vault_keys (created_at DESC, id DESC);
CREATE INDEX vault_keys_run_idx ON vault_keys (run_label, created_at DESC, id DESC);
CREATE INDEX vault_keys_vendor_idx ON vault_keys (vendor, created_at DESC, id DESC);

-- The same totals per UTC day, for daily caps. A row exists from the first
-- reservation of that day.
CREATE TABLE key_days (
	key_id   text   NOT NULL REFERENCES vault_keys (id) ON DELETE CASCADE,
	day      date   NOT NULL,
	spent    bigint NOT NULL DEFAULT 0,
	reserved bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, day)
);

CREATE TABLE calls (
	-- seq orders calls recorded in the same microsecond and keys the audit
	-- cursor.
	seq             bigserial   NOT NULL UNIQUE,
	call_id         text        PRIMARY KEY,
	-- No foreign key: a refusal is recorded even when its key is unknown,
	-- and then key_id is ''.
	key_id          text        NOT NULL DEFAULT '',
	run_label       text        NOT NULL DEFAULT '',
	vendor          text        NOT NULL DEFAULT '',
	method          text        NOT NULL DEFAULT '',
	path            text        NOT NULL DEFAULT '',
	endpoint        text        NOT NULL DEFAULT '',
	status_code     integer     NOT NULL DEFAULT 0,
	outcome         text        NOT NULL,
	reserved        bigint      NOT NULL DEFAULT 0,
	cost            bigint      NOT NULL DEFAULT 0,
	vendor_amount   bigint,
	vendor_currency text        NOT NULL DEFAULT '',
	vendor_txn_id   text        NOT NULL DEFAULT '',
	idempotency_key text        NOT NULL DEFAULT '',
	replay_of       text        NOT NULL DEFAULT '',
	cost_state      text        NOT NULL,
	-- The UTC day the call started: Settle and Release move the counters of
	-- that day, even when the response comes after midnight.
	day             date        NOT NULL,
	started_at      timestamptz NOT NULL,
	finished_at     timestamptz
);

-- Audit filters, each ending in the audit order.
CREATE INDEX calls_started_idx ON calls (started_at, seq);
CREATE INDEX calls_run_idx ON calls (run_label, started_at, seq);
CREATE INDEX calls_key_idx ON calls (key_id, started_at, seq);
CREATE INDEX calls_vendor_idx ON calls (vendor, started_at, seq);
-- Reconciliation of open or provisional costs (PendingCalls).
CREATE INDEX calls_pending_idx ON calls (vendor, cost_state, started_at, seq)
	WHERE cost_state IN ('reserved', 'unknown', 'unpriced');
-- "Have we seen this PaymentIntent" (FindVendorTxn).
CREATE INDEX calls_txn_idx ON calls (vendor, vendor_txn_id) WHERE vendor_txn_id <> '';

-- Finds the original call for an idempotency key. Not unique: an original
-- whose outcome was released (the vendor refused it, and Stripe keeps no
-- result for a request that failed validation) or unknown (the vendor may
-- never have seen it) does not make a retry a replay, since the retry may
-- really move money; it is reserved anew. Reservations on one key are
-- serialised by the key row lock, so no two live originals can race.
CREATE INDEX calls_idempotency_idx ON calls (key_id, idempotency_key)
	WHERE idempotency_key <> '' AND replay_of = '';
