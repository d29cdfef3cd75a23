-- 0007: the ledger at scale (issue 20; docs/ledger.md).
--
-- Every audit filter has an index ending in the audit order (started_at,
-- seq), so a filtered page is an index range, never a walk of
-- calls_by_started with a filter.
CREATE INDEX calls_by_vendor ON calls (vendor, started_at, seq);
CREATE INDEX calls_by_outcome ON calls (outcome, started_at, seq);
CREATE INDEX calls_by_state ON calls (cost_state, started_at, seq);

-- A refusal before reservation is counted per key (or address), vendor,
-- outcome and minute: the first refusal's row is the sample, call_count
-- says how many it stands for and finished_at when the last one was.
-- refusal_bucket names the minute's row; it is NULL on every other call.
ALTER TABLE calls ADD COLUMN call_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE calls ADD COLUMN refusal_bucket TEXT;
CREATE UNIQUE INDEX calls_by_refusal_bucket ON calls (refusal_bucket) WHERE refusal_bucket IS NOT NULL;

-- The daily rollup the summaries read: per UTC day (the call's day, that of
-- its key_days row), run, vendor, endpoint and outcome, the counters of
-- ledger.SummaryRow. The triggers below keep it in the transaction that
-- writes the call, whatever writes it. Nothing removes from it when calls
-- are deleted (retain_calls): summaries outlive the rows they count.
CREATE TABLE call_days (
    day       INTEGER NOT NULL,
    run_label TEXT    NOT NULL,
    vendor    TEXT    NOT NULL,
    endpoint  TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    calls     INTEGER NOT NULL DEFAULT 0,
    forwarded INTEGER NOT NULL DEFAULT 0,
    replays   INTEGER NOT NULL DEFAULT 0,
    cap_hits  INTEGER NOT NULL DEFAULT 0,
    refused   INTEGER NOT NULL DEFAULT 0,
    spent     INTEGER NOT NULL DEFAULT 0,
    reserved  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, run_label, vendor, endpoint, outcome)
) STRICT, WITHOUT ROWID;

CREATE INDEX call_days_by_run ON call_days (run_label, day);

-- A call counts: call_count calls; forwarded when it held a reservation
-- (its cost state left none) or is a replay; a cap hit by its outcome;
-- refused when refused without a reservation otherwise; its cost; and its
-- reservation while it is reserved or unknown.
INSERT INTO call_days (day, run_label, vendor, endpoint, outcome, calls, forwarded, replays, cap_hits, refused, spent, reserved)
SELECT day, run_label, vendor, endpoint, outcome, count(*),
       sum(cost_state <> 'none' OR replay_of <> ''),
       sum(replay_of <> ''),
       sum(outcome IN ('cap_hit', 'budget_hit')),
       sum(cost_state = 'none' AND replay_of = '' AND outcome NOT IN ('cap_hit', 'budget_hit')),
       sum(cost),
       sum(CASE WHEN cost_state IN ('reserved', 'unknown') THEN reserved ELSE 0 END)
FROM calls GROUP BY day, run_label, vendor, endpoint, outcome;

-- Every change to what a call counts goes through call_day_moves, one row
-- per version of a call added (sign 1) or taken out (sign -1), so that what
-- a call counts is written once, in call_day_moves_apply. The table stays
-- empty: each row is applied and deleted as it is inserted.
CREATE TABLE call_day_moves (
    sign       INTEGER NOT NULL,
    day        INTEGER NOT NULL,
    run_label  TEXT    NOT NULL,
    vendor     TEXT    NOT NULL,
    endpoint   TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    call_count INTEGER NOT NULL,
    cost_state TEXT    NOT NULL,
    replay_of  TEXT    NOT NULL,
    cost       INTEGER NOT NULL,
    reserved   INTEGER NOT NULL
) STRICT;

CREATE TRIGGER call_day_moves_apply AFTER INSERT ON call_day_moves
BEGIN
    INSERT INTO call_days (day, run_label, vendor, endpoint, outcome, calls, forwarded, replays, cap_hits, refused, spent, reserved)
    VALUES (NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint, NEW.outcome, NEW.sign * NEW.call_count,
        NEW.sign * NEW.call_count * (NEW.cost_state <> 'none' OR NEW.replay_of <> ''),
        NEW.sign * NEW.call_count * (NEW.replay_of <> ''),
        NEW.sign * NEW.call_count * (NEW.outcome IN ('cap_hit', 'budget_hit')),
        NEW.sign * NEW.call_count * (NEW.cost_state = 'none' AND NEW.replay_of = '' AND NEW.outcome NOT IN ('cap_hit', 'budget_hit')),
        NEW.sign * NEW.cost,
        NEW.sign * CASE WHEN NEW.cost_state IN ('reserved', 'unknown') THEN NEW.reserved ELSE 0 END)
    ON CONFLICT (day, run_label, vendor, endpoint, outcome) DO UPDATE SET
        calls = calls + excluded.calls, forwarded = forwarded + excluded.forwarded,
        replays = replays + excluded.replays, cap_hits = cap_hits + excluded.cap_hits,
        refused = refused + excluded.refused, spent = spent + excluded.spent,
        reserved = reserved + excluded.reserved;
    DELETE FROM call_day_moves;
END;

CREATE TRIGGER calls_roll_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO call_day_moves VALUES (1, NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint, NEW.outcome,
        NEW.call_count, NEW.cost_state, NEW.replay_of, NEW.cost, NEW.reserved);
END;

-- An update takes the old version's counts out and puts the new one's in
-- (a settlement may change the outcome, and so the row it counts in).
CREATE TRIGGER calls_roll_update AFTER UPDATE OF outcome, cost_state, cost, reserved, call_count ON calls
WHEN OLD.outcome <> NEW.outcome OR OLD.cost_state <> NEW.cost_state OR OLD.cost <> NEW.cost
  OR OLD.reserved <> NEW.reserved OR OLD.call_count <> NEW.call_count
BEGIN
    INSERT INTO call_day_moves VALUES (-1, OLD.day, OLD.run_label, OLD.vendor, OLD.endpoint, OLD.outcome,
        OLD.call_count, OLD.cost_state, OLD.replay_of, OLD.cost, OLD.reserved);
    INSERT INTO call_day_moves VALUES (1, NEW.day, NEW.run_label, NEW.vendor, NEW.endpoint, NEW.outcome,
        NEW.call_count, NEW.cost_state, NEW.replay_of, NEW.cost, NEW.reserved);
END;
