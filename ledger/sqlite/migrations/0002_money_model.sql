-- 0002: the money model (issue 7). A replay is free only when it is the
-- same request as its original (request_hash) within the vendor's replay
-- window; a call that acts on a known vendor object records it before
-- forwarding, so what a key has counted for that object can be summed.
ALTER TABLE calls ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX calls_by_key_txn ON calls (key_id, vendor_txn_id) WHERE vendor_txn_id <> '';
