package postgres

import (
	"github.com/jackc/pgx/v5"
)

// postgresTagCalls records the tags of the calls a reservation let go
// ahead ($1 call ids, $2 tags, $3 replay windows in microseconds): each
// call's own, or the tag of the first tagged attempt of its idempotent
// request (same key, idempotency key and fingerprint, within the window).
// It is queued after the reservation in one pgx batch, which Postgres runs
// as one implicit transaction: the tag commits with the reservation, with
// no commit of its own. Attempts of one idempotency key are serialised by
// the key row lock, so a first attempt's tag is committed before a retry
// is reserved. The UPDATE is a function (migration 0017) so that it is
// planned without sequential scans whatever calls' statistics say.
const postgresTagCalls = `SELECT call_id, tag FROM keybrake_tag_calls($1::text[], $2::text[], $3::bigint[])`

// postgresTags are the tags to record after a batch's reservations.
type postgresTags struct {
	callIDs, tags []string
	windows       []int64
}

func (t *postgresTags) add(callID, tag string, windowMicros int64) {
	t.callIDs = append(t.callIDs, callID)
	t.tags = append(t.tags, tag)
	t.windows = append(t.windows, windowMicros)
}

// queue queues the tags' UPDATE on b, when there are any.
func (t *postgresTags) queue(b *pgx.Batch) bool {
	if len(t.callIDs) == 0 {
		return false
	}
	b.Queue(postgresTagCalls, t.callIDs, t.tags, t.windows)
	return true
}

// read reads the tags recorded, by call id.
func (t *postgresTags) read(br pgx.BatchResults) (map[string]string, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var id, tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return nil, err
		}
		got[id] = tag
	}
	return got, rows.Err()
}
