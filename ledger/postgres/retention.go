package postgres

import (
	"context"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

var _ ledger.Retainer = (*postgresStore)(nil)

// DeleteCalls deletes one batch of old final calls in one statement (its
// own short transaction), found through calls_started_idx.
func (s *postgresStore) DeleteCalls(ctx context.Context, before time.Time, limit int) (int, error) {
	q, args := ledger.RetentionSQL(postgresDialect, before, limit)
	tag, err := s.pool.Exec(ctx, `DELETE FROM calls WHERE seq IN (`+q+`)`, args...)
	if err != nil {
		return 0, s.wrapErr("deleting old calls", err)
	}
	return int(tag.RowsAffected()), nil
}
