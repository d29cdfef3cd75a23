package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// sqliteCloseDrain bounds how long Close waits for queued writes.
const sqliteCloseDrain = 10 * time.Second

// Interface guard.
var _ ledger.Batcher = (*sqliteStore)(nil)

// runBatch writes a batch of ops in one BEGIN IMMEDIATE transaction, so
// one fsync commits them all. Finishes go first, then reservations, each
// in arrival order; each op runs in a savepoint of its own, so an op that
// fails (an unknown key, a bad argument) is rolled back alone and the
// others commit.
func (s *sqliteStore) runBatch(ctx context.Context, ops []ledger.Op) ([]ledger.ReserveResult, []error) {
	if len(ops) == 1 {
		// A lone op needs no savepoint: its failure rolls the
		// transaction back.
		var res ledger.ReserveResult
		err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
			var err error
			if op := ops[0]; op.Finish != nil {
				err = sqliteFinishOp(ctx, tx, *op.Finish)
			} else {
				res, err = sqliteReserveOp(ctx, tx, *op.Reserve)
			}
			return err
		})
		return []ledger.ReserveResult{res}, []error{err}
	}
	results := make([]ledger.ReserveResult, len(ops))
	errs := make([]error, len(ops))
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		for _, finishes := range []bool{true, false} {
			for i, op := range ops {
				if (op.Finish != nil) != finishes {
					continue
				}
				if _, err := tx.ExecContext(ctx, `SAVEPOINT op`); err != nil {
					return err
				}
				if op.Finish != nil {
					errs[i] = sqliteFinishOp(ctx, tx, *op.Finish)
				} else {
					results[i], errs[i] = sqliteReserveOp(ctx, tx, *op.Reserve)
				}
				if errs[i] != nil {
					errs[i] = s.mapErr(errs[i])
					if _, err := tx.ExecContext(ctx, `ROLLBACK TO op`); err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(ctx, `RELEASE op`); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return ledger.FailAll(ops, fmt.Errorf("writing a batch of %d ledger writes: %w", len(ops), err))
	}
	return results, errs
}
