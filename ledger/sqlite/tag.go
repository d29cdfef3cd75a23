package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// TagCall records the tag a call writes on its vendor object, or the tag
// of the first tagged attempt of the same idempotent request.
func (s *sqliteStore) TagCall(ctx context.Context, callID, tag string, replayWindow time.Duration) (string, error) {
	if tag == "" {
		return "", fmt.Errorf("tagging call %s: empty tag", callID)
	}
	var got string
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		err := tx.QueryRowContext(ctx, `UPDATE calls AS c SET tag = COALESCE((
				SELECT o.tag FROM calls o
				WHERE c.idempotency_key <> '' AND c.request_hash <> ''
				  AND o.key_id = c.key_id AND o.idempotency_key = c.idempotency_key
				  AND o.request_hash = c.request_hash AND o.replay_of = '' AND o.tag <> ''
				  AND o.call_id <> c.call_id AND o.started_at > c.started_at - ?
				ORDER BY o.seq LIMIT 1), ?)
			WHERE call_id = ? RETURNING tag`, replayWindow.Nanoseconds(), tag, callID).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return ledger.ErrNotFound
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("tagging call %s: %w", callID, s.mapErr(err))
	}
	return got, nil
}
