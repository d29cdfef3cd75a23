-- 0012: the rate rule from a ring of N slots per key, as Postgres's 0016
-- (docs/decisions.md, "The rate log"). 0010 kept a row per counted call in
-- key_rate_log and, for every money-moving call of a rate key, read the
-- window's N-th newest row, deleted the rows that had left the window and
-- inserted one: three statements of the one writer per call.
--
-- Now the key row counts the slots ever taken (rate_taken) and the last
-- time written (rate_last, unix nanoseconds: times are made monotonic per
-- key), and key_rate_slots holds the last N times: the next call's slot,
-- rate_taken mod N, holds the N-th newest once the ring is full. Until
-- then nothing is read; counting a call writes one slot, and its counts go
-- on the key row with the reservation's.
ALTER TABLE keys ADD COLUMN rate_taken INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN rate_last INTEGER;

CREATE TABLE key_rate_slots (
    key_id TEXT    NOT NULL,
    slot   INTEGER NOT NULL,
    at     INTEGER NOT NULL, -- unix nanoseconds
    PRIMARY KEY (key_id, slot)
) STRICT, WITHOUT ROWID;

-- What 0010 kept, moved into rings: each rate key's newest min(N, kept)
-- times, oldest first from slot 0.
INSERT INTO key_rate_slots (key_id, slot, at)
    SELECT key_id, n - 1 - max(kept - rate_calls, 0), at FROM (
        SELECT l.key_id, l.at,
            row_number() OVER (PARTITION BY l.key_id ORDER BY l.at) AS n,
            count(*) OVER (PARTITION BY l.key_id) AS kept,
            k.rate_calls
        FROM key_rate_log l JOIN keys k ON k.id = l.key_id
        WHERE k.rate_calls IS NOT NULL
    )
    WHERE n > kept - rate_calls;
UPDATE keys SET
    rate_taken = (SELECT count(*) FROM key_rate_slots s WHERE s.key_id = keys.id),
    rate_last = (SELECT max(at) FROM key_rate_slots s WHERE s.key_id = keys.id)
    WHERE id IN (SELECT key_id FROM key_rate_slots);
DROP TABLE key_rate_log;
