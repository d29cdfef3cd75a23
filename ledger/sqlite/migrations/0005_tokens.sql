-- 0005: API tokens as principals (issue 9), as in the Postgres ledger's
-- 0006: tokens stored by the SHA-256 of their secret, every key records the
-- token that issued it ('' for a configured bootstrap token), and a token's
-- daily_cap / total_cap are a budget over its keys, checked by Reserve in
-- the same transaction as the key's caps.
CREATE TABLE api_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    policy     TEXT,             -- JSON object, or NULL
    daily_cap  INTEGER,          -- NULL: no daily budget
    total_cap  INTEGER,          -- NULL: no lifetime budget
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    spent      INTEGER NOT NULL DEFAULT 0,
    reserved   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE token_days (
    token_id TEXT    NOT NULL REFERENCES api_tokens (id),
    day      INTEGER NOT NULL,
    spent    INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, day)
) STRICT, WITHOUT ROWID;

ALTER TABLE keys ADD COLUMN token_id TEXT NOT NULL DEFAULT '';
CREATE INDEX keys_by_token ON keys (token_id, created_at, id) WHERE token_id <> '';

-- Whatever moves a key's totals moves its token's by the same amounts, in
-- the same transaction.
CREATE TRIGGER keys_token_totals AFTER UPDATE OF spent, reserved ON keys
WHEN NEW.token_id <> '' AND (NEW.spent <> OLD.spent OR NEW.reserved <> OLD.reserved)
BEGIN
    UPDATE api_tokens SET spent = spent + (NEW.spent - OLD.spent), reserved = reserved + (NEW.reserved - OLD.reserved)
        WHERE id = NEW.token_id;
END;

CREATE TRIGGER key_days_token_insert AFTER INSERT ON key_days
WHEN (SELECT token_id FROM keys WHERE id = NEW.key_id) <> '' AND (NEW.spent <> 0 OR NEW.reserved <> 0)
BEGIN
    INSERT INTO token_days (token_id, day, spent, reserved)
        VALUES ((SELECT token_id FROM keys WHERE id = NEW.key_id), NEW.day, NEW.spent, NEW.reserved)
        ON CONFLICT (token_id, day) DO UPDATE SET
            spent = spent + excluded.spent, reserved = reserved + excluded.reserved;
END;

CREATE TRIGGER key_days_token_update AFTER UPDATE OF spent, reserved ON key_days
WHEN (SELECT token_id FROM keys WHERE id = NEW.key_id) <> '' AND (NEW.spent <> OLD.spent OR NEW.reserved <> OLD.reserved)
BEGIN
    INSERT INTO token_days (token_id, day, spent, reserved)
        VALUES ((SELECT token_id FROM keys WHERE id = NEW.key_id), NEW.day, NEW.spent - OLD.spent, NEW.reserved - OLD.reserved)
        ON CONFLICT (token_id, day) DO UPDATE SET
            spent = spent + excluded.spent, reserved = reserved + excluded.reserved;
END;
