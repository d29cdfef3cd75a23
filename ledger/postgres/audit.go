package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// postgresCallColumns are read by scanPostgresCall, in this order; seq last.
const postgresCallColumns = `call_id, key_id, run_label, vendor, method, path, endpoint,
	status_code, outcome, reserved, cost, vendor_amount, vendor_currency, vendor_txn_id,
	idempotency_key, replay_of, cost_state, tag, started_at, finished_at,
	resolved_by, resolved_at, resolve_reason, call_count, rule, seq`

// ObjectExposure sums what a key has counted for one vendor object.
func (s *postgresStore) ObjectExposure(ctx context.Context, keyID, vendor, object string) (money.Micros, error) {
	if object == "" {
		return 0, nil
	}
	// The object's calls may have settlements queued on this node (the
	// gate settles after answering): they count as written.
	if err := s.Coalescer.Wait(ctx); err != nil {
		return 0, fmt.Errorf("summing object exposure: %w", err)
	}
	var sum int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(SUM(CASE
			WHEN cost_state IN ('reserved', 'unknown') THEN reserved
			WHEN cost_state IN ('settled', 'unpriced') THEN cost
			ELSE 0 END), 0)::bigint
		FROM calls WHERE vendor_txn_id = $2 AND vendor_txn_id <> '' AND key_id = $1 AND vendor = $3`, keyID, object, vendor).Scan(&sum)
	if err != nil {
		return 0, s.wrapErr("summing object exposure", err)
	}
	return money.Micros(sum), nil
}

// postgresDialect writes ledger's shared queries for this backend.
var postgresDialect = ledger.Dialect{
	Placeholder: ledger.DollarN,
	Time:        func(t time.Time) any { return t },
	Day:         func(t time.Time) any { return ledger.Day(t) },
}

// Audit lists calls oldest first. The cursor is the position of the last
// call returned.
func (s *postgresStore) Audit(ctx context.Context, f ledger.AuditFilter) ([]ledger.Call, string, error) {
	limit, after, err := f.Page()
	if err != nil {
		return nil, "", fmt.Errorf("listing calls: %w", err)
	}
	q, args := ledger.AuditSQL(postgresDialect, postgresCallColumns, f, limit, after)
	calls, seqs, err := s.queryCalls(ctx, q, args...)
	if err != nil {
		return nil, "", s.wrapErr("listing calls", err)
	}
	calls, next := ledger.TrimPage(calls, limit, func(last int) string {
		return ledger.CallCursor{StartedAt: calls[last].StartedAt, Seq: seqs[last]}.Encode()
	})
	return calls, next, nil
}

// Summary reads the daily rollups (call_days, kept by the trigger of
// migration 0011, by rule since 0014, as calls are written), summing their
// shards.
func (s *postgresStore) Summary(ctx context.Context, f ledger.SummaryFilter) ([]ledger.SummaryRow, error) {
	q, args := ledger.SummarySQL(postgresDialect, f)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, s.wrapErr("summarising calls", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.SummaryRow, error) {
		var row ledger.SummaryRow
		var spent, reserved int64
		err := r.Scan(&row.RunLabel, &row.Vendor, &row.Endpoint, &row.Outcome, &row.Calls,
			&row.Forwarded, &row.Replays, &row.CapHits, &row.Refused, &spent, &reserved)
		row.Spent, row.Reserved = money.Micros(spent), money.Micros(reserved)
		row.Outcome, row.Rule = ledger.SplitRuleOutcome(row.Outcome)
		return row, err
	})
	return out, s.wrapErr("summarising calls", err)
}

// PendingCalls lists a vendor's calls in a cost state that started before
// the given time, oldest first.
func (s *postgresStore) PendingCalls(ctx context.Context, vendor, costState string, startedBefore time.Time, limit int) ([]ledger.Call, error) {
	limit, err := ledger.PageLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("listing pending calls: %w", err)
	}
	if !ledger.IsPendingState(costState) {
		return nil, fmt.Errorf("listing pending calls: cost state %q is not pending", costState)
	}
	calls, _, err := s.queryCalls(ctx, `SELECT `+postgresCallColumns+` FROM calls
		WHERE vendor = $1 AND cost_state = $2 AND started_at < $3
		ORDER BY started_at, seq LIMIT $4`, vendor, costState, startedBefore, limit)
	return calls, s.wrapErr("listing pending calls", err)
}

// queryCalls runs a query selecting postgresCallColumns and returns the
// calls and their seq numbers.
func (s *postgresStore) queryCalls(ctx context.Context, q string, args ...any) ([]ledger.Call, []int64, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var calls []ledger.Call
	var seqs []int64
	for rows.Next() {
		c, seq, err := scanPostgresCall(rows)
		if err != nil {
			return nil, nil, err
		}
		calls = append(calls, c)
		seqs = append(seqs, seq)
	}
	return calls, seqs, rows.Err()
}

// scanPostgresCall reads postgresCallColumns.
func scanPostgresCall(row pgx.Row) (ledger.Call, int64, error) {
	var c ledger.Call
	var reserved, cost, seq int64
	if err := row.Scan(&c.CallID, &c.KeyID, &c.RunLabel, &c.Vendor, &c.Method, &c.Path,
		&c.Endpoint, &c.StatusCode, &c.Outcome, &reserved, &cost, &c.VendorAmount,
		&c.VendorCurrency, &c.VendorTxnID, &c.IdempotencyKey, &c.ReplayOf, &c.CostState, &c.Tag,
		&c.StartedAt, &c.FinishedAt, &c.ResolvedBy, &c.ResolvedAt, &c.ResolveReason, &c.Count, &c.Rule, &seq); err != nil {
		return ledger.Call{}, 0, err
	}
	c.Reserved, c.Cost = money.Micros(reserved), money.Micros(cost)
	c.StartedAt = c.StartedAt.UTC()
	if c.FinishedAt != nil {
		t := c.FinishedAt.UTC()
		c.FinishedAt = &t
	}
	if c.ResolvedAt != nil {
		t := c.ResolvedAt.UTC()
		c.ResolvedAt = &t
	}
	return c, seq, nil
}
