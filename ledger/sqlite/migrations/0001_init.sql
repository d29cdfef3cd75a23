-- Keybrake embedded ledger, first schema.
--
-- Money is INTEGER micro-dollars; times are INTEGER unix nanoseconds UTC;
-- a "day" is the unix nanoseconds of its UTC midnight. Tables are STRICT so a
-- float or a string can never slip into a money column.

-- Keys are found by the SHA-256 of their secret; the secret is never stored.
-- The running totals live on the key row so that Reserve reads one row for
-- the lifetime cap.
CREATE TABLE keys (
    id                TEXT    NOT NULL PRIMARY KEY,
    hash              BLOB    NOT NULL UNIQUE,
    vendor            TEXT    NOT NULL,
    daily_cap         INTEGER,          -- NULL: no daily cap
    total_cap         INTEGER,          -- NULL: no lifetime cap
    allowed_endpoints TEXT    NOT NULL, -- JSON array of strings
    run_label         TEXT    NOT NULL,
    metadata          TEXT,             -- JSON object, or NULL
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    revoked_at        INTEGER,
    spent             INTEGER NOT NULL DEFAULT 0,
    reserved          INTEGER NOT NULL DEFAULT 0,
    calls             INTEGER NOT NULL DEFAULT 0,
    cap_hits          INTEGER NOT NULL DEFAULT 0
) STRICT;

-- ListKeys pages newest first, optionally within one run.
CREATE INDEX keys_by_created ON keys (created_at, id);
CREATE INDEX keys_by_run ON keys (run_label, created_at, id);

-- Spend per key and UTC day, for daily caps. A row appears with the day's
-- first reservation.
CREATE TABLE key_days (
    key_id   TEXT    NOT NULL REFERENCES keys (id),
    day      INTEGER NOT NULL,
    spent    INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
) STRICT, WITHOUT ROWID;

-- One row per call, forwarded or refused. seq (the rowid) breaks ties between
-- calls started in the same nanosecond so audit paging is stable.
CREATE TABLE calls (
    seq             INTEGER PRIMARY KEY,
    call_id         TEXT    NOT NULL UNIQUE,
    key_id          TEXT    REFERENCES keys (id), -- NULL when refused before a key was known
    run_label       TEXT    NOT NULL,
    vendor          TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    endpoint        TEXT    NOT NULL,
    status_code     INTEGER NOT NULL DEFAULT 0,
    outcome         TEXT    NOT NULL,
    reserved        INTEGER NOT NULL DEFAULT 0,
    cost            INTEGER NOT NULL DEFAULT 0,
    vendor_amount   INTEGER,
    vendor_currency TEXT    NOT NULL DEFAULT '',
    vendor_txn_id   TEXT    NOT NULL DEFAULT '',
    idempotency_key TEXT    NOT NULL DEFAULT '',
    replay_of       TEXT    NOT NULL DEFAULT '',
    cost_state      TEXT    NOT NULL,
    day             INTEGER NOT NULL, -- UTC day of started_at: the key_days row it counts in
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER
) STRICT;

CREATE INDEX calls_by_started ON calls (started_at, seq);
CREATE INDEX calls_by_run ON calls (run_label, started_at, seq);
CREATE INDEX calls_by_key ON calls (key_id, started_at, seq);
CREATE INDEX calls_by_idempotency ON calls (key_id, idempotency_key, seq) WHERE idempotency_key <> '';
CREATE INDEX calls_by_vendor_txn ON calls (vendor, vendor_txn_id, started_at) WHERE vendor_txn_id <> '';
CREATE INDEX calls_by_cost_state ON calls (vendor, cost_state, started_at, seq);
