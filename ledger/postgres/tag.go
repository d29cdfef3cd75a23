package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
)

// postgresTagCall records the tag of a call a lone reservation let go
// ahead: its own, or the tag of the first tagged attempt of its idempotent
// request (same key, idempotency key and fingerprint, within the window).
// It is queued after keybrake_reserve in one pgx batch, which Postgres runs
// as one implicit transaction: the tag commits with the reservation, with
// no commit of its own. Attempts of one idempotency key are serialised by
// the key row lock, so a first attempt's tag is committed before a retry
// is reserved. The UPDATE is a function (migration 0017) so that it is
// planned without sequential scans whatever calls' statistics say; a batch
// writes its calls' tags itself, in their INSERT.
const postgresTagCall = `SELECT tag FROM keybrake_tag_calls($1::text[], $2::text[], $3::bigint[])`

// queueTag queues the recording of r's tag on b.
func queueTag(b *pgx.Batch, r ledger.ReserveRequest) {
	b.Queue(postgresTagCall, []string{r.CallID}, []string{r.Tag}, []int64{r.ReplayWindow.Microseconds()})
}

// readTag reads the tag queueTag recorded: "" when the reservation did not
// let the call go ahead (no row was tagged).
func readTag(br pgx.BatchResults) (string, error) {
	var tag string
	if err := br.QueryRow().Scan(&tag); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	return tag, nil
}
