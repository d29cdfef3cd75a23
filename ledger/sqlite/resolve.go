package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keybrake/keybrake/ledger"
)

// Resolve settles or releases an unresolved call and records the
// resolution, in one transaction.
func (s *sqliteStore) Resolve(ctx context.Context, callID string, res ledger.Resolution) (ledger.Call, error) {
	if !res.Release && res.Cost < 0 {
		return ledger.Call{}, fmt.Errorf("resolving call %s: negative cost %d", callID, res.Cost)
	}
	var c ledger.Call
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		var (
			state   string
			started int64
			status  int
		)
		err := tx.QueryRowContext(ctx, `SELECT cost_state, started_at, status_code FROM calls WHERE call_id = ?`, callID).
			Scan(&state, &started, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return ledger.ErrNotFound
		}
		if err != nil {
			return err
		}
		if !res.Resolvable(state, sqliteFromNanos(started)) {
			return ledger.ErrNotResolvable
		}
		st := ledger.Settlement{StatusCode: status, Cost: res.Cost, VendorTxnID: res.VendorTxnID, Now: res.Now}
		how, newState := sqliteSettle, ledger.CostSettled
		if res.Release {
			how, newState, st.Cost = sqliteRelease, ledger.CostReleased, 0
		}
		if err := sqliteFinishTx(ctx, tx, callID, st, how, newState); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE calls SET resolved_by = ?, resolved_at = ?, resolve_reason = ? WHERE call_id = ?`,
			res.By, sqliteTime(res.Now), res.Reason, callID); err != nil {
			return err
		}
		c, _, err = sqliteScanCall(tx.QueryRowContext(ctx, `SELECT `+sqliteCallColumns+` FROM calls WHERE call_id = ?`, callID))
		return err
	})
	if err != nil {
		return ledger.Call{}, fmt.Errorf("resolving call %s: %w", callID, err)
	}
	return c, nil
}
