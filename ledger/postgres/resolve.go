package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
)

// Resolve settles or releases an unresolved call and records the
// resolution, in one transaction holding the call's row lock.
func (s *postgresStore) Resolve(ctx context.Context, callID string, res ledger.Resolution) (ledger.Call, error) {
	if !res.Release && res.Cost < 0 {
		return ledger.Call{}, fmt.Errorf("resolving call %s: negative cost %s", callID, res.Cost)
	}
	var c ledger.Call
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			state   string
			started time.Time
			status  int
		)
		err := tx.QueryRow(ctx, `SELECT cost_state, started_at, status_code FROM calls WHERE call_id = $1 FOR UPDATE`, callID).
			Scan(&state, &started, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return ledger.ErrNotFound
		}
		if err != nil {
			return err
		}
		if !res.Resolvable(state, started) {
			return ledger.ErrNotResolvable
		}
		mode, newState, cost := "settle", ledger.CostSettled, res.Cost
		if res.Release {
			mode, newState, cost = "release", ledger.CostReleased, 0
		}
		var got string
		if err := tx.QueryRow(ctx, `SELECT keybrake_finish($1, $2, $3, $4, $5, NULL, '', $6, '', $7)`,
			callID, mode, int64(cost), newState, status, res.VendorTxnID, res.Now).Scan(&got); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE calls SET resolved_by = $2, resolved_at = $3, resolve_reason = $4 WHERE call_id = $1`,
			callID, res.By, res.Now, res.Reason); err != nil {
			return err
		}
		c, _, err = scanPostgresCall(tx.QueryRow(ctx, `SELECT `+postgresCallColumns+` FROM calls WHERE call_id = $1`, callID))
		return err
	})
	if errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrNotResolvable) {
		return ledger.Call{}, fmt.Errorf("resolving call %s: %w", callID, err)
	}
	if err != nil {
		return ledger.Call{}, s.wrapErr("resolving call", err)
	}
	return c, nil
}
