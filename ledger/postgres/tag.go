package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
)

// TagCall records the tag a call writes on its vendor object, or the tag
// of the first tagged attempt of the same idempotent request. Attempts of
// one idempotency key are serialised by Reserve's key row lock, so the
// first attempt's tag is committed before a retry is reserved.
func (s *postgresStore) TagCall(ctx context.Context, callID, tag string, replayWindow time.Duration) (string, error) {
	if tag == "" {
		return "", fmt.Errorf("tagging call %s: empty tag", callID)
	}
	var got string
	err := s.pool.QueryRow(ctx, `UPDATE calls AS c SET tag = COALESCE((
			SELECT o.tag FROM calls o
			WHERE c.idempotency_key <> '' AND c.request_hash <> ''
			  AND o.key_id = c.key_id AND o.idempotency_key = c.idempotency_key
			  AND o.request_hash = c.request_hash AND o.replay_of = '' AND o.tag <> ''
			  AND o.call_id <> c.call_id AND o.started_at > c.started_at - $2::interval
			ORDER BY o.started_at, o.seq LIMIT 1), $3)
		WHERE call_id = $1 RETURNING tag`, callID, replayWindow, tag).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("tagging call %s: %w", callID, ledger.ErrNotFound)
	}
	if err != nil {
		return "", s.wrapErr("tagging call", err)
	}
	return got, nil
}
