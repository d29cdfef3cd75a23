-- 0010: rules (docs/rules.md), as Postgres's migration 0014: the key's
-- rules as JSON, its stateful rules in columns Reserve reads in the one
-- writer's transaction, once_per claims unique per key and value, a rate
-- log pruned to the window (at most rate_calls rows per key), and a call
-- released gives back its max_calls count and once_per claims.
ALTER TABLE keys ADD COLUMN rules TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN max_calls INTEGER;
ALTER TABLE keys ADD COLUMN rate_calls INTEGER;
ALTER TABLE keys ADD COLUMN rate_window_us INTEGER;
ALTER TABLE keys ADD COLUMN once_per TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN rule_calls INTEGER NOT NULL DEFAULT 0;

ALTER TABLE calls ADD COLUMN rule TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN rule_counted INTEGER NOT NULL DEFAULT 0;

CREATE TABLE key_claims (
    key_id  TEXT NOT NULL REFERENCES keys (id),
    value   TEXT NOT NULL,
    call_id TEXT NOT NULL,
    PRIMARY KEY (key_id, value)
) STRICT, WITHOUT ROWID;
CREATE INDEX key_claims_by_call ON key_claims (call_id);

CREATE TABLE key_rate_log (
    key_id  TEXT    NOT NULL REFERENCES keys (id),
    at      INTEGER NOT NULL, -- unix nanoseconds
    call_id TEXT    NOT NULL
) STRICT;
CREATE INDEX key_rate_log_by_key ON key_rate_log (key_id, at);

CREATE TRIGGER calls_rule_release AFTER UPDATE OF cost_state ON calls
    WHEN NEW.cost_state = 'released' AND OLD.cost_state <> 'released' AND OLD.rule_counted
BEGIN
    UPDATE keys SET rule_calls = rule_calls - 1 WHERE id = NEW.key_id;
    DELETE FROM key_claims WHERE call_id = NEW.call_id;
END;

-- The daily rollups (0007) count a rule's refusals under
-- "rule_denied:<rule>" (ledger.RuleOutcome), so that summaries count
-- refusals by rule: the triggers of 0007 with that outcome. A call's rule
-- is set when it is written and never changes.
DROP TRIGGER calls_roll_insert;
DROP TRIGGER calls_roll_update;

CREATE TRIGGER calls_roll_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO call_day_moves VALUES (1, NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint,
        NEW.outcome || CASE WHEN NEW.rule <> '' THEN ':' || NEW.rule ELSE '' END,
        NEW.call_count, NEW.cost_state, NEW.replay_of, NEW.cost, NEW.reserved);
END;

CREATE TRIGGER calls_roll_update AFTER UPDATE OF outcome, cost_state, cost, reserved, call_count ON calls
WHEN OLD.outcome <> NEW.outcome OR OLD.cost_state <> NEW.cost_state OR OLD.cost <> NEW.cost
  OR OLD.reserved <> NEW.reserved OR OLD.call_count <> NEW.call_count
BEGIN
    INSERT INTO call_day_moves VALUES (-1, OLD.day, OLD.run_label, OLD.vendor, OLD.endpoint,
        OLD.outcome || CASE WHEN OLD.rule <> '' THEN ':' || OLD.rule ELSE '' END,
        OLD.call_count, OLD.cost_state, OLD.replay_of, OLD.cost, OLD.reserved);
    INSERT INTO call_day_moves VALUES (1, NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint,
        NEW.outcome || CASE WHEN NEW.rule <> '' THEN ':' || NEW.rule ELSE '' END,
        NEW.call_count, NEW.cost_state, NEW.replay_of, NEW.cost, NEW.reserved);
END;
