package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/keybrake/keybrake/ledger"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
)

// sqliteKeyState is what Reserve reads about a key inside its transaction.
type sqliteKeyState struct {
	vendor, runLabel      string
	dailyCap, totalCap    sql.NullInt64
	expiresAt             int64
	revoked               bool
	spent, reserved       int64
	daySpent, dayReserved int64
	tokenID               string
	endpointAllowed       bool
	rules                 sqliteKeyRules
	// budget is the issuing token's budget, when it has one.
	budget *sqliteBudget
}

// sqliteBudget is a token's budget and what its keys have counted.
type sqliteBudget struct {
	dailyCap, totalCap    sql.NullInt64
	spent, reserved       int64
	daySpent, dayReserved int64
}

// Reserve runs in a BEGIN IMMEDIATE transaction on the single write
// connection, with whatever other writes were queued meanwhile (see
// sqlite_batch.go): the key's counters cannot change between the cap check
// and the reservation, so no interleaving of callers can exceed a cap.
func (s *sqliteStore) Reserve(ctx context.Context, r ledger.ReserveRequest) (ledger.ReserveResult, error) {
	return s.Coalescer.Do(ctx, ledger.Op{Reserve: &r})
}

// sqliteReserveOp is one reservation inside a write transaction.
func sqliteReserveOp(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) (ledger.ReserveResult, error) {
	if r.Estimate < 0 || r.Minimum < 0 {
		return ledger.ReserveResult{}, fmt.Errorf("reserving cost for call %s: negative estimate %d or minimum %d", r.CallID, r.Estimate, r.Minimum)
	}
	res, err := sqliteReserveTx(ctx, tx, r)
	if err != nil {
		return ledger.ReserveResult{}, fmt.Errorf("reserving cost for call %s: %w", r.CallID, err)
	}
	return res, nil
}

func sqliteReserveTx(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) (ledger.ReserveResult, error) {
	day := sqliteDay(r.Now)
	var k sqliteKeyState
	var revokedAt sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT k.vendor, k.run_label, k.daily_cap, k.total_cap,
			k.expires_at, k.revoked_at, k.spent, k.reserved,
			COALESCE(d.spent, 0), COALESCE(d.reserved, 0), k.token_id,
			? = '' OR EXISTS (SELECT 1 FROM json_each(k.allowed_endpoints) e WHERE e.value = ?),
			k.max_calls, k.rate_calls, k.rate_window_us, k.once_per, k.rule_calls, k.rate_taken, k.rate_last
		FROM `+sqliteKeyFrom+` WHERE k.id = +?`, r.Endpoint, r.Endpoint, day, r.KeyID).Scan(
		&k.vendor, &k.runLabel, &k.dailyCap, &k.totalCap, &k.expiresAt, &revokedAt,
		&k.spent, &k.reserved, &k.daySpent, &k.dayReserved, &k.tokenID, &k.endpointAllowed,
		&k.rules.maxCalls, &k.rules.rateCalls, &k.rules.rateWindowUS, &k.rules.oncePer, &k.rules.ruleCalls,
		&k.rules.rateTaken, &k.rules.rateLast)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.ReserveResult{}, fmt.Errorf("key %s: %w", r.KeyID, ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.ReserveResult{}, err
	}
	k.revoked = revokedAt.Valid

	res := ledger.ReserveResult{RunLabel: k.runLabel}
	// The order of the checks is the contract: vendor, revocation, expiry,
	// allowlist, idempotent replay, caps. A replay goes ahead even at the cap because
	// the vendor will not charge it again.
	switch {
	case k.vendor != r.Vendor:
		res.Outcome = ledger.OutcomeWrongVendor
	case k.revoked:
		res.Outcome = ledger.OutcomeRevoked
	case sqliteTime(r.Now) >= k.expiresAt:
		res.Outcome = ledger.OutcomeExpired
	case !k.endpointAllowed:
		// The allowlist as stored, not as a node cached it: a narrowing
		// PATCH holds from the next call.
		res.Outcome = ledger.OutcomeEndpointDenied
	}
	if res.Outcome == "" && r.IdempotencyKey != "" && r.ReplayWindow > 0 {
		var orig sqliteOriginal
		orig, err = sqliteFindOriginal(ctx, tx, r)
		if err != nil {
			return ledger.ReserveResult{}, err
		}
		res.ReplayOf = orig.callID
		switch {
		case orig.callID == "":
		case orig.requestHash != r.Fingerprint:
			res.Outcome = ledger.OutcomeIdempotencyMismatch
		case orig.costState == ledger.CostReserved:
			res.Outcome = ledger.OutcomeIdempotencyInFlight
		default:
			res.Outcome = ledger.OutcomeIdempotentReplay
		}
	}
	if res.Outcome == "" && r.MovesMoney {
		if res.Rule, res.RetryAfter, err = k.rules.denied(ctx, tx, r); err != nil {
			return ledger.ReserveResult{}, err
		}
		if res.Rule != "" {
			res.Outcome = ledger.OutcomeRuleDenied
		}
	}
	held := int64(0)
	if res.Outcome == "" {
		if k.budget, err = sqliteReadBudget(ctx, tx, k.tokenID, day); err != nil {
			return ledger.ReserveResult{}, err
		}
		held = k.hold(int64(r.Estimate), int64(r.Minimum))
		switch {
		case held > 0 || r.Estimate == 0:
			res.Outcome = ledger.OutcomeForwarded
		case k.keyOnly().hold(int64(r.Estimate), int64(r.Minimum)) > 0:
			// The key alone would have let it through: the token's budget
			// stopped it.
			res.Outcome = ledger.OutcomeBudgetHit
		default:
			res.Outcome = ledger.OutcomeCapHit
		}
	}
	costState := ledger.CostNone
	if res.Outcome == ledger.OutcomeForwarded {
		costState = ledger.CostReserved
	}
	res.Reserved = money.Micros(held)
	res.Remaining = k.remaining(held)
	if r.Tag != "" && res.Allowed() {
		if res.Tag, err = sqliteFirstTag(ctx, tx, r); err != nil {
			return ledger.ReserveResult{}, err
		}
	}
	counted := res.Outcome == ledger.OutcomeForwarded && r.MovesMoney && k.rules.counts()
	// A refusal (nothing reserved, not a replay sent on to the vendor) is
	// counted per key, vendor, outcome and minute, as RecordRefusal counts
	// those decided before the reservation: a key at its cap, revoked or
	// refused by a rule that goes on calling adds a row a minute, not a
	// row a call.
	var bucket sql.NullString
	if costState == ledger.CostNone && res.ReplayOf == "" {
		bucket = sql.NullString{String: ledger.RefusalBucket(ledger.Call{KeyID: r.KeyID, Vendor: r.Vendor,
			Outcome: res.Outcome, Rule: res.Rule, StartedAt: r.Now}), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO calls
		(call_id, key_id, run_label, vendor, method, path, endpoint, outcome, status_code, reserved, cost,
		 idempotency_key, request_hash, replay_of, vendor_txn_id, cost_state, tag, day, started_at, rule, rule_counted,
		 refusal_bucket)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (refusal_bucket) WHERE refusal_bucket IS NOT NULL DO UPDATE SET
			call_count = call_count + 1, finished_at = max(coalesce(finished_at, started_at), excluded.started_at)`,
		r.CallID, r.KeyID, k.runLabel, r.Vendor, r.Method, r.Path, r.Endpoint, res.Outcome, refusalStatus(res.Outcome, res.Rule), held,
		r.IdempotencyKey, r.Fingerprint, res.ReplayOf, r.Object, costState, res.Tag, day, sqliteTime(r.Now), res.Rule, counted,
		bucket); err != nil {
		return ledger.ReserveResult{}, err
	}
	var ruleCalls, rateTaken int64 // what the call adds to the key's rule counts
	var rateLast sql.NullInt64
	if counted {
		if rateLast, err = k.rules.take(ctx, tx, r); err != nil {
			return ledger.ReserveResult{}, err
		}
		ruleCalls = 1
		if rateLast.Valid {
			rateTaken = 1
		}
	}
	switch res.Outcome {
	case ledger.OutcomeForwarded:
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET reserved = reserved + ?, calls = calls + 1,
				rule_calls = rule_calls + ?, rate_taken = rate_taken + ?, rate_last = COALESCE(?, rate_last)
			WHERE id = ?`, held, ruleCalls, rateTaken, rateLast, r.KeyID); err != nil {
			return ledger.ReserveResult{}, err
		}
		if err := sqliteAddToDay(ctx, tx, r.KeyID, day, 0, held); err != nil {
			return ledger.ReserveResult{}, err
		}
	case ledger.OutcomeIdempotentReplay:
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET calls = calls + 1 WHERE id = ?`, r.KeyID); err != nil {
			return ledger.ReserveResult{}, err
		}
	case ledger.OutcomeCapHit, ledger.OutcomeBudgetHit:
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET cap_hits = cap_hits + 1 WHERE id = ?`, r.KeyID); err != nil {
			return ledger.ReserveResult{}, err
		}
	}
	return res, nil
}

// sqliteFindOriginalSQL and sqliteFirstTagSQL are the lookups of an
// idempotency key (sqliteFindOriginal, sqliteFirstTag).
const (
	sqliteFindOriginalSQL = `SELECT call_id, request_hash, cost_state FROM calls
		WHERE key_id = +? AND idempotency_key = +? AND idempotency_key <> '' AND request_hash <> '' AND replay_of = ''
		  AND cost_state IN (+?, +?, +?) AND started_at > +?
		ORDER BY seq LIMIT 1`
	sqliteFirstTagSQL = `SELECT tag FROM calls
		WHERE key_id = +? AND idempotency_key = +? AND idempotency_key <> '' AND request_hash = +? AND replay_of = '' AND tag <> ''
		  AND started_at > +?
		ORDER BY seq LIMIT 1`
)

// sqliteOriginal is the original call of an idempotency key.
type sqliteOriginal struct {
	callID, requestHash, costState string
}

// sqliteFindOriginal returns the first call of the key with that idempotency
// key that went to the vendor with a reservation and is still live or
// settled, within the vendor's replay window, and on which the vendor
// honoured the key (it has a fingerprint); a zero sqliteOriginal if none
// is. Refused calls (cost state none) do not count: a retry after a cap hit
// is a new attempt. Released calls (the vendor refused; Stripe saves no
// result for a request that failed validation) and unknown ones (the vendor
// may never have seen them) do not count either: the retry may really move
// money, so it is reserved anew.
//
// The lookups of an idempotency key state that it is not empty, the
// condition of the partial index calls_by_idempotency, which SQLite uses
// only when the query states it: without it they walked the key's every
// call of the replay window (a day for Stripe) through calls_by_key. Their
// values are bound as +? (see sqliteKeyFrom).
func sqliteFindOriginal(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) (sqliteOriginal, error) {
	var o sqliteOriginal
	err := tx.QueryRowContext(ctx, sqliteFindOriginalSQL, r.KeyID, r.IdempotencyKey, ledger.CostReserved, ledger.CostSettled, ledger.CostUnpriced,
		sqliteTime(r.Now.Add(-r.ReplayWindow))).Scan(&o.callID, &o.requestHash, &o.costState)
	if errors.Is(err, sql.ErrNoRows) {
		return sqliteOriginal{}, nil
	}
	return o, err
}

// sqliteFirstTag is the tag a call that goes ahead records: that of the
// first tagged attempt of the same idempotent request (same key,
// idempotency key and fingerprint, within the replay window), else its own.
func sqliteFirstTag(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) (string, error) {
	if r.IdempotencyKey == "" || r.Fingerprint == "" {
		return r.Tag, nil
	}
	var tag string
	err := tx.QueryRowContext(ctx, sqliteFirstTagSQL, r.KeyID, r.IdempotencyKey, r.Fingerprint, sqliteTime(r.Now.Add(-r.ReplayWindow))).Scan(&tag)
	if errors.Is(err, sql.ErrNoRows) {
		return r.Tag, nil
	}
	return tag, err
}

// sqliteAddToDay adds to a key's day row, creating it on the day's first call.
func sqliteAddToDay(ctx context.Context, tx *sqliteTx, keyID string, day, spent, reserved int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO key_days (key_id, day, spent, reserved) VALUES (?, ?, ?, ?)
		ON CONFLICT (key_id, day) DO UPDATE SET
			spent = spent + excluded.spent, reserved = reserved + excluded.reserved`,
		keyID, day, spent, reserved)
	return err
}

// hold is what a call may reserve: the whole estimate when it fits within
// both caps; else, with a minimum set, the tighter cap's headroom when that
// is at least the minimum; else 0 (a cap hit, for a call with an estimate).
// It compares against the headroom rather than summing, so a huge estimate
// cannot overflow into a pass.
func (k sqliteKeyState) hold(estimate, minimum int64) int64 {
	headroom, capped := int64(0), false
	consider := func(cap sql.NullInt64, used int64) {
		if cap.Valid && (!capped || cap.Int64-used < headroom) {
			headroom, capped = cap.Int64-used, true
		}
	}
	consider(k.totalCap, k.spent+k.reserved)
	consider(k.dailyCap, k.daySpent+k.dayReserved)
	if b := k.budget; b != nil {
		consider(b.totalCap, b.spent+b.reserved)
		consider(b.dailyCap, b.daySpent+b.dayReserved)
	}
	switch {
	case !capped || estimate <= headroom:
		return estimate
	case minimum > 0 && minimum <= headroom:
		return headroom
	default:
		return 0
	}
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
	if b := k.budget; b != nil {
		consider(b.totalCap, b.spent+b.reserved)
		consider(b.dailyCap, b.daySpent+b.dayReserved)
	}
	return money.Micros(max(rem, 0))
}

// keyOnly is k without its token's budget.
func (k sqliteKeyState) keyOnly() sqliteKeyState {
	k.budget = nil
	return k
}

// sqliteReadBudget reads the budget of the token that issued a key, inside
// the reserving transaction (the single writer: nothing moves it meanwhile);
// nil when the key has no token or the token no budget. The token's totals
// are moved by the triggers of migration 0005 whenever a key's are.
func sqliteReadBudget(ctx context.Context, tx *sqliteTx, tokenID string, day int64) (*sqliteBudget, error) {
	if tokenID == "" {
		return nil, nil
	}
	var b sqliteBudget
	err := tx.QueryRowContext(ctx, `SELECT t.daily_cap, t.total_cap, t.spent, t.reserved,
			COALESCE(d.spent, 0), COALESCE(d.reserved, 0)
		FROM api_tokens t LEFT JOIN token_days d ON d.token_id = t.id AND d.day = +?
		WHERE t.id = +?`, day, tokenID).Scan(&b.dailyCap, &b.totalCap, &b.spent, &b.reserved, &b.daySpent, &b.dayReserved)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !b.dailyCap.Valid && !b.totalCap.Valid) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// refusalStatus is the status the gate answers a refusal decided by Reserve
// with, recorded on its call row; 0 for a call that goes ahead (its status
// is the vendor's, recorded when it settles).
func refusalStatus(outcome, rule string) int {
	switch outcome {
	case ledger.OutcomeRuleDenied:
		if rule == rules.RuleRate || rule == rules.RuleMaxCalls {
			return 429
		}
		return 403
	case ledger.OutcomeCapHit, ledger.OutcomeBudgetHit:
		return 429
	case ledger.OutcomeIdempotencyMismatch:
		return 400
	case ledger.OutcomeIdempotencyInFlight:
		return 409
	case ledger.OutcomeEndpointDenied:
		return 403
	case ledger.OutcomeForwarded, ledger.OutcomeIdempotentReplay:
		return 0
	default:
		return 401
	}
}
