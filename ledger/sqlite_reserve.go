package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keybrake/keybrake/money"
)

// sqliteKeyState is what Reserve reads about a key inside its transaction.
type sqliteKeyState struct {
	vendor, runLabel      string
	dailyCap, totalCap    sql.NullInt64
	expiresAt             int64
	revoked               bool
	spent, reserved       int64
	daySpent, dayReserved int64
}

// Reserve runs in one BEGIN IMMEDIATE transaction on the single write
// connection: the key's counters cannot change between the cap check and
// the reservation, so no interleaving of callers can exceed a cap.
func (s *sqliteStore) Reserve(ctx context.Context, r ReserveRequest) (ReserveResult, error) {
	if r.Estimate < 0 {
		return ReserveResult{}, fmt.Errorf("reserving cost for call %s: negative estimate %d", r.CallID, r.Estimate)
	}
	var res ReserveResult
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		var err error
		res, err = sqliteReserveTx(ctx, tx, r)
		return err
	})
	if err != nil {
		return ReserveResult{}, fmt.Errorf("reserving cost for call %s: %w", r.CallID, err)
	}
	return res, nil
}

func sqliteReserveTx(ctx context.Context, tx *sqliteTx, r ReserveRequest) (ReserveResult, error) {
	day := sqliteDay(r.Now)
	var k sqliteKeyState
	var revokedAt sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT k.vendor, k.run_label, k.daily_cap, k.total_cap,
			k.expires_at, k.revoked_at, k.spent, k.reserved,
			COALESCE(d.spent, 0), COALESCE(d.reserved, 0)
		FROM `+sqliteKeyFrom+` WHERE k.id = ?`, day, r.KeyID).Scan(
		&k.vendor, &k.runLabel, &k.dailyCap, &k.totalCap, &k.expiresAt, &revokedAt,
		&k.spent, &k.reserved, &k.daySpent, &k.dayReserved)
	if errors.Is(err, sql.ErrNoRows) {
		return ReserveResult{}, fmt.Errorf("key %s: %w", r.KeyID, ErrNotFound)
	}
	if err != nil {
		return ReserveResult{}, err
	}
	k.revoked = revokedAt.Valid

	res := ReserveResult{RunLabel: k.runLabel}
	// The order of the checks is the contract: vendor, revocation, expiry,
	// idempotent replay, caps. A replay goes ahead even at the cap because
	// the vendor will not charge it again.
	switch {
	case k.vendor != r.Vendor:
		res.Outcome = OutcomeWrongVendor
	case k.revoked:
		res.Outcome = OutcomeRevoked
	case sqliteTime(r.Now) >= k.expiresAt:
		res.Outcome = OutcomeExpired
	}
	if res.Outcome == "" && r.IdempotencyKey != "" {
		res.ReplayOf, err = sqliteFindOriginal(ctx, tx, r.KeyID, r.IdempotencyKey)
		if err != nil {
			return ReserveResult{}, err
		}
		if res.ReplayOf != "" {
			res.Outcome = OutcomeIdempotentReplay
		}
	}
	if res.Outcome == "" {
		if k.fits(int64(r.Estimate)) {
			res.Outcome = OutcomeForwarded
		} else {
			res.Outcome = OutcomeCapHit
		}
	}

	held := int64(0)
	costState := CostNone
	if res.Outcome == OutcomeForwarded {
		held = int64(r.Estimate)
		costState = CostReserved
	}
	res.Remaining = k.remaining(held)

	if _, err := tx.ExecContext(ctx, `INSERT INTO calls
		(call_id, key_id, run_label, vendor, method, path, endpoint, outcome, status_code, reserved, cost,
		 idempotency_key, replay_of, cost_state, day, started_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`,
		r.CallID, r.KeyID, k.runLabel, r.Vendor, r.Method, r.Path, r.Endpoint, res.Outcome, refusalStatus(res.Outcome), held,
		r.IdempotencyKey, res.ReplayOf, costState, day, sqliteTime(r.Now)); err != nil {
		return ReserveResult{}, err
	}

	switch res.Outcome {
	case OutcomeForwarded:
		if _, err := tx.ExecContext(ctx,
			`UPDATE keys SET reserved = reserved + ?, calls = calls + 1 WHERE id = ?`, held, r.KeyID); err != nil {
			return ReserveResult{}, err
		}
		if err := sqliteAddToDay(ctx, tx, r.KeyID, day, 0, held); err != nil {
			return ReserveResult{}, err
		}
	case OutcomeIdempotentReplay:
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET calls = calls + 1 WHERE id = ?`, r.KeyID); err != nil {
			return ReserveResult{}, err
		}
	case OutcomeCapHit:
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET cap_hits = cap_hits + 1 WHERE id = ?`, r.KeyID); err != nil {
			return ReserveResult{}, err
		}
	}
	return res, nil
}

// sqliteFindOriginal returns the first call of the key with that idempotency
// key that went to the vendor and is still live or settled, or "" if none
// is. Refused calls (cost state none) do not count: a retry after a cap hit
// is a new attempt. Released calls (the vendor refused; Stripe saves no
// result for a request that failed validation) and unknown ones (the vendor
// may never have seen them) do not count either: the retry may really move
// money, so it is reserved anew.
func sqliteFindOriginal(ctx context.Context, tx *sqliteTx, keyID, idempotencyKey string) (string, error) {
	var callID string
	err := tx.QueryRowContext(ctx, `SELECT call_id FROM calls
		WHERE key_id = ? AND idempotency_key = ? AND replay_of = ''
		  AND cost_state IN (?, ?, ?)
		ORDER BY seq LIMIT 1`, keyID, idempotencyKey, CostReserved, CostSettled, CostUnpriced).Scan(&callID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return callID, err
}

// sqliteAddToDay adds to a key's day row, creating it on the day's first call.
func sqliteAddToDay(ctx context.Context, tx *sqliteTx, keyID string, day, spent, reserved int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO key_days (key_id, day, spent, reserved) VALUES (?, ?, ?, ?)
		ON CONFLICT (key_id, day) DO UPDATE SET
			spent = spent + excluded.spent, reserved = reserved + excluded.reserved`,
		keyID, day, spent, reserved)
	return err
}

// fits reports whether estimate more stays within both caps. It compares
// against the headroom rather than summing, so a huge estimate cannot
// overflow into a pass.
func (k sqliteKeyState) fits(estimate int64) bool {
	if k.totalCap.Valid && estimate > k.totalCap.Int64-(k.spent+k.reserved) {
		return false
	}
	if k.dailyCap.Valid && estimate > k.dailyCap.Int64-(k.daySpent+k.dayReserved) {
		return false
	}
	return true
}

// remaining is the headroom of the tighter cap once held more is reserved,
// never below zero (a settled cost above its estimate can overshoot). A key
// with no cap at all, which the key API never issues, reports 0.
func (k sqliteKeyState) remaining(held int64) money.Micros {
	rem := int64(-1)
	consider := func(cap sql.NullInt64, used int64) {
		if !cap.Valid {
			return
		}
		left := max(cap.Int64-used-held, 0)
		if rem < 0 || left < rem {
			rem = left
		}
	}
	consider(k.totalCap, k.spent+k.reserved)
	consider(k.dailyCap, k.daySpent+k.dayReserved)
	return money.Micros(max(rem, 0))
}

// refusalStatus is the status the gate answers a refusal decided by Reserve
// with, recorded on its call row; 0 for a call that goes ahead (its status
// is the vendor's, recorded when it settles).
func refusalStatus(outcome string) int {
	switch outcome {
	case OutcomeCapHit:
		return 429
	case OutcomeForwarded, OutcomeIdempotentReplay:
		return 0
	default:
		return 401
	}
}
