package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

func (s *sqliteStore) RecordRefusal(ctx context.Context, c ledger.Call) error {
	var finished sql.NullInt64
	if c.FinishedAt != nil {
		finished = sql.NullInt64{Int64: sqliteTime(*c.FinishedAt), Valid: true}
	}
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		// The minute's first refusal of its bucket is written as it is;
		// the next ones only count into it (ledger.RefusalBucket).
		_, err := tx.ExecContext(ctx, `INSERT INTO calls
			(call_id, key_id, run_label, vendor, method, path, endpoint, status_code, outcome,
			 reserved, cost, vendor_amount, vendor_currency, vendor_txn_id, idempotency_key, replay_of,
			 cost_state, day, started_at, finished_at, refusal_bucket, rule)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)
			ON CONFLICT (refusal_bucket) WHERE refusal_bucket IS NOT NULL DO UPDATE SET
				call_count = call_count + 1, finished_at = max(coalesce(finished_at, started_at), coalesce(excluded.finished_at, excluded.started_at))`,
			c.CallID, sqliteNullString(c.KeyID), c.RunLabel, c.Vendor, c.Method, c.Path, c.Endpoint,
			c.StatusCode, c.Outcome, sqliteNullInt64(c.VendorAmount), c.VendorCurrency, c.VendorTxnID,
			c.IdempotencyKey, ledger.CostNone, sqliteDay(c.StartedAt), sqliteTime(c.StartedAt), finished,
			ledger.RefusalBucket(c), c.Rule)
		return err
	})
	if err != nil {
		return fmt.Errorf("recording refused call %s: %w", c.CallID, err)
	}
	return nil
}

// sqliteObjectExposureSQL sums a key's calls on one vendor object. It
// states the condition of calls_by_any_vendor_txn (a non-empty id):
// without it the planner cannot use that partial index for a bound id, and
// walks the key's every call.
const sqliteObjectExposureSQL = `SELECT COALESCE(SUM(CASE
		WHEN cost_state IN (?, ?) THEN reserved
		WHEN cost_state IN (?, ?) THEN cost
		ELSE 0 END), 0)
	FROM calls WHERE key_id = ? AND vendor_txn_id = ? AND vendor = ? AND vendor_txn_id <> ''`

// sqlitePendingCallsSQL pages a vendor's calls in one pending state. The
// literal IN is calls_pending's condition, for the same reason.
var sqlitePendingCallsSQL = `SELECT ` + sqliteCallColumns + ` FROM calls
	WHERE vendor = ? AND cost_state = ? AND started_at < ? AND cost_state IN ('reserved', 'unpriced', 'unknown')
	ORDER BY started_at, seq LIMIT ?`

// ObjectExposure sums what a key has counted for one vendor object.
func (s *sqliteStore) ObjectExposure(ctx context.Context, keyID, vendor, object string) (money.Micros, error) {
	if object == "" {
		return 0, nil
	}
	// The object's calls may have settlements queued on this node (the
	// gate settles after answering): they count as written.
	if err := s.Coalescer.Wait(ctx); err != nil {
		return 0, fmt.Errorf("summing object exposure: %w", err)
	}
	var sum int64
	err := s.read.QueryRowContext(ctx, sqliteObjectExposureSQL,
		ledger.CostReserved, ledger.CostUnknown, ledger.CostSettled, ledger.CostUnpriced, keyID, object, vendor).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("summing exposure of %s %q: %w", vendor, object, s.mapErr(err))
	}
	return money.Micros(sum), nil
}

// sqliteDialect writes ledger's shared queries for this backend.
var sqliteDialect = ledger.Dialect{
	Placeholder: ledger.QuestionMark,
	Time:        func(t time.Time) any { return sqliteTime(t) },
	Day:         func(t time.Time) any { return sqliteDay(t) },
}

func (s *sqliteStore) Audit(ctx context.Context, f ledger.AuditFilter) ([]ledger.Call, string, error) {
	limit, after, err := f.Page()
	if err != nil {
		return nil, "", fmt.Errorf("listing calls: %w", err)
	}
	q, args := ledger.AuditSQL(sqliteDialect, sqliteCallColumns, f, limit, after)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing calls: %w", s.mapErr(err))
	}
	calls, seqs, err := sqliteQueryCalls(rows)
	if err != nil {
		return nil, "", fmt.Errorf("listing calls: %w", s.mapErr(err))
	}
	calls, next := ledger.TrimPage(calls, limit, func(last int) string {
		return ledger.CallCursor{StartedAt: calls[last].StartedAt, Seq: seqs[last]}.Encode()
	})
	return calls, next, nil
}

// Summary reads the daily rollups (call_days, kept by the triggers of
// migration 0007 as calls are written), as the Postgres backend does.
func (s *sqliteStore) Summary(ctx context.Context, f ledger.SummaryFilter) ([]ledger.SummaryRow, error) {
	q, args := ledger.SummarySQL(sqliteDialect, f)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("summarising calls: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []ledger.SummaryRow
	for rows.Next() {
		var r ledger.SummaryRow
		var spent, reserved int64
		if err := rows.Scan(&r.RunLabel, &r.Vendor, &r.Endpoint, &r.Outcome, &r.Calls, &r.Forwarded,
			&r.Replays, &r.CapHits, &r.Refused, &spent, &reserved); err != nil {
			return nil, fmt.Errorf("summarising calls: %w", s.mapErr(err))
		}
		r.Spent, r.Reserved = money.Micros(spent), money.Micros(reserved)
		r.Outcome, r.Rule = ledger.SplitRuleOutcome(r.Outcome)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarising calls: %w", s.mapErr(err))
	}
	return out, nil
}

func (s *sqliteStore) PendingCalls(ctx context.Context, vendor, costState string, startedBefore time.Time, limit int) ([]ledger.Call, error) {
	limit, err := ledger.PageLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("listing pending calls: %w", err)
	}
	if !ledger.IsPendingState(costState) {
		return nil, fmt.Errorf("listing pending calls: cost state %q is not pending", costState)
	}
	rows, err := s.read.QueryContext(ctx, sqlitePendingCallsSQL, vendor, costState, sqliteTime(startedBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("listing pending calls: %w", s.mapErr(err))
	}
	calls, _, err := sqliteQueryCalls(rows)
	if err != nil {
		return nil, fmt.Errorf("listing pending calls: %w", s.mapErr(err))
	}
	return calls, nil
}
