package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

var _ ledger.Retainer = (*sqliteStore)(nil)

// DeleteCalls deletes one batch of old final calls in a write transaction
// of its own, between the gate's batches on the single writer.
func (s *sqliteStore) DeleteCalls(ctx context.Context, before time.Time, limit int) (int, error) {
	q, args := ledger.RetentionSQL(sqliteDialect, before, limit)
	var n int64
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM calls WHERE seq IN (`+q+`)`, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("deleting old calls: %w", err)
	}
	return int(n), nil
}
