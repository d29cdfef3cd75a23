package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// postgresCallColumns are read by scanPostgresCall, in this order; seq last.
const postgresCallColumns = `call_id, key_id, run_label, vendor, method, path, endpoint,
	status_code, outcome, reserved, cost, vendor_amount, vendor_currency, vendor_txn_id,
	idempotency_key, replay_of, cost_state, tag, started_at, finished_at,
	resolved_by, resolved_at, resolve_reason, seq`

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

// Audit lists calls oldest first. The cursor is the position of the last
// call returned.
func (s *postgresStore) Audit(ctx context.Context, f ledger.AuditFilter) ([]ledger.Call, string, error) {
	limit, after, err := f.Page()
	if err != nil {
		return nil, "", fmt.Errorf("listing calls: %w", err)
	}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var where []string
	// A fixed order keeps the SQL text, and so pgx's statement cache, stable.
	for _, eq := range [...]struct{ col, val string }{
		{"run_label", f.RunLabel}, {"key_id", f.KeyID}, {"vendor", f.Vendor},
		{"outcome", f.Outcome}, {"cost_state", f.CostState}, {"vendor_txn_id", f.VendorTxnID},
	} {
		if eq.val != "" {
			where = append(where, eq.col+" = "+arg(eq.val))
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "started_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "started_at < "+arg(f.Until))
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(started_at, seq) > (%s, %s)", arg(after.StartedAt), arg(after.Seq)))
	}
	q := `SELECT ` + postgresCallColumns + ` FROM calls`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY started_at, seq LIMIT " + arg(limit+1)

	calls, seqs, err := s.queryCalls(ctx, q, args...)
	if err != nil {
		return nil, "", s.wrapErr("listing calls", err)
	}
	calls, next := ledger.TrimPage(calls, limit, func(last int) string {
		return ledger.CallCursor{StartedAt: calls[last].StartedAt, Seq: seqs[last]}.Encode()
	})
	return calls, next, nil
}

// Summary aggregates calls by run, vendor, endpoint and outcome. A call
// counts as forwarded when it was let through: it held a reservation at some
// point (its cost state left 'none') or it was an idempotent replay. Spent is
// what settled and provisional costs add up to; Reserved what open and
// unknown calls still hold.
func (s *postgresStore) Summary(ctx context.Context, f ledger.SummaryFilter) ([]ledger.SummaryRow, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := []string{"true"}
	if f.RunLabel != "" {
		where = append(where, "run_label = "+arg(f.RunLabel))
	}
	if !f.Since.IsZero() {
		where = append(where, "started_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "started_at < "+arg(f.Until))
	}
	rows, err := s.pool.Query(ctx, `SELECT run_label, vendor, endpoint, outcome,
			count(*),
			count(*) FILTER (WHERE cost_state <> 'none' OR replay_of <> ''),
			count(*) FILTER (WHERE replay_of <> ''),
			count(*) FILTER (WHERE outcome IN ('cap_hit', 'budget_hit')),
			count(*) FILTER (WHERE cost_state = 'none' AND replay_of = '' AND outcome NOT IN ('cap_hit', 'budget_hit')),
			coalesce(sum(cost), 0)::bigint,
			coalesce(sum(reserved) FILTER (WHERE cost_state IN ('reserved', 'unknown')), 0)::bigint
		FROM calls WHERE `+strings.Join(where, " AND ")+`
		GROUP BY run_label, vendor, endpoint, outcome
		ORDER BY run_label, vendor, endpoint, outcome`, args...)
	if err != nil {
		return nil, s.wrapErr("summarising calls", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.SummaryRow, error) {
		var row ledger.SummaryRow
		var spent, reserved int64
		err := r.Scan(&row.RunLabel, &row.Vendor, &row.Endpoint, &row.Outcome, &row.Calls,
			&row.Forwarded, &row.Replays, &row.CapHits, &row.Refused, &spent, &reserved)
		row.Spent, row.Reserved = money.Micros(spent), money.Micros(reserved)
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
		&c.StartedAt, &c.FinishedAt, &c.ResolvedBy, &c.ResolvedAt, &c.ResolveReason, &seq); err != nil {
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
