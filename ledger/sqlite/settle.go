package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keybrake/keybrake/ledger"
)

// sqliteFinish names the three ways a reserved call can end.
type sqliteFinish int

const (
	sqliteSettle sqliteFinish = iota
	sqliteRelease
	sqliteMarkUnknown
)

func (f sqliteFinish) String() string {
	switch f {
	case sqliteSettle:
		return "settling"
	case sqliteRelease:
		return "releasing"
	default:
		return "marking unknown"
	}
}

func (s *sqliteStore) Settle(ctx context.Context, callID string, st ledger.Settlement) error {
	return s.finish(ctx, callID, st, sqliteSettle)
}

func (s *sqliteStore) Release(ctx context.Context, callID string, st ledger.Settlement) error {
	return s.finish(ctx, callID, st, sqliteRelease)
}

func (s *sqliteStore) MarkUnknown(ctx context.Context, callID string, st ledger.Settlement) error {
	return s.finish(ctx, callID, st, sqliteMarkUnknown)
}

// finish moves a call out of reserved/unknown/unpriced and the key's
// counters with it, as store.go describes, in one transaction (shared with
// the other writes queued meanwhile). A call in any other state is left
// alone so a repeated or late settlement counts once.
func (s *sqliteStore) finish(ctx context.Context, callID string, st ledger.Settlement, how sqliteFinish) error {
	_, err := s.Coalescer.Do(ctx, ledger.Op{Finish: &ledger.Finish{CallID: callID, Mode: how.mode(), Settlement: st}})
	return err
}

// mode is the Finish mode of how.
func (f sqliteFinish) mode() ledger.FinishMode {
	switch f {
	case sqliteSettle:
		return ledger.FinishSettle
	case sqliteRelease:
		return ledger.FinishRelease
	default:
		return ledger.FinishUnknown
	}
}

// sqliteFinishOp is one finish inside a write transaction.
func sqliteFinishOp(ctx context.Context, tx *sqliteTx, f ledger.Finish) error {
	how, st, callID := sqliteMarkUnknown, f.Settlement, f.CallID
	switch f.Mode {
	case ledger.FinishSettle:
		how = sqliteSettle
	case ledger.FinishRelease:
		how = sqliteRelease
	}
	newState := ledger.CostReleased
	switch how {
	case sqliteSettle:
		newState = st.CostState
		if newState == "" {
			newState = ledger.CostSettled
		}
		if newState != ledger.CostSettled && newState != ledger.CostUnpriced {
			return fmt.Errorf("%s call %s: cost state %q is not settled or unpriced", how, callID, newState)
		}
		if st.Cost < 0 {
			return fmt.Errorf("%s call %s: negative cost %d", how, callID, st.Cost)
		}
	case sqliteMarkUnknown:
		newState = ledger.CostUnknown
	}
	if err := sqliteFinishTx(ctx, tx, callID, st, how, newState); err != nil {
		return fmt.Errorf("%s call %s: %w", how, callID, err)
	}
	return nil
}

// sqliteFinishTx is finish inside the transaction tx.
func sqliteFinishTx(ctx context.Context, tx *sqliteTx, callID string, st ledger.Settlement, how sqliteFinish, newState string) error {
	var (
		keyID               sql.NullString
		day, reserved, cost int64
		state               string
	)
	err := tx.QueryRowContext(ctx,
		`SELECT key_id, day, reserved, cost, cost_state FROM calls WHERE call_id = ?`, callID).
		Scan(&keyID, &day, &reserved, &cost, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.ErrNotFound
	}
	if err != nil {
		return err
	}
	if state != ledger.CostReserved && state != ledger.CostUnknown && state != ledger.CostUnpriced {
		return nil
	}
	held := int64(0)
	if state == ledger.CostReserved || state == ledger.CostUnknown {
		held = reserved
	}

	var dReserved, dSpent, newCost int64
	switch how {
	case sqliteSettle:
		newCost = int64(st.Cost)
		dReserved, dSpent = -held, newCost-cost
	case sqliteRelease:
		newCost = 0
		dReserved, dSpent = -held, -cost
	case sqliteMarkUnknown:
		// Only a plain reservation becomes unknown; the counters stay.
		newCost = cost
		if state != ledger.CostReserved {
			newState = state
		}
	}

	if _, err := tx.ExecContext(ctx, `UPDATE calls SET
			cost = ?, cost_state = ?, status_code = ?,
			outcome         = CASE WHEN ? = '' THEN outcome ELSE ? END,
			vendor_amount   = COALESCE(?, vendor_amount),
			vendor_currency = CASE WHEN ? = '' THEN vendor_currency ELSE ? END,
			vendor_txn_id   = CASE WHEN ? = '' THEN vendor_txn_id ELSE ? END,
			finished_at = ?
		WHERE call_id = ?`,
		newCost, newState, st.StatusCode,
		st.Outcome, st.Outcome,
		sqliteNullInt64(st.VendorAmount),
		st.VendorCurrency, st.VendorCurrency,
		st.VendorTxnID, st.VendorTxnID,
		sqliteTime(st.Now), callID); err != nil {
		return err
	}
	if (dReserved == 0 && dSpent == 0) || !keyID.Valid {
		return nil
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE keys SET reserved = reserved + ?, spent = spent + ? WHERE id = ?`,
		dReserved, dSpent, keyID.String); err != nil {
		return err
	}
	return sqliteAddToDay(ctx, tx, keyID.String, day, dSpent, dReserved)
}
