package ledger

import (
	"strconv"
	"strings"
	"time"
)

// The read queries of the audit and the summaries are written here once,
// for every SQL backend, so that each is answered through an index the same
// way everywhere (docs/ledger.md); each backend's plan test checks it.

// Dialect is what differs between the SQL backends in these queries.
type Dialect struct {
	// Placeholder is the n-th (from 1) bound parameter: "?" or "$n".
	Placeholder func(n int) string
	// Time and Day encode a time, and the UTC day of a time, as the
	// backend's started_at and day columns hold them.
	Time func(time.Time) any
	Day  func(time.Time) any
}

// query builds a statement's WHERE clause and arguments.
type query struct {
	d     Dialect
	where []string
	args  []any
}

func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return q.d.Placeholder(len(q.args))
}

func (q *query) whereClause() string {
	if len(q.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.where, " AND ")
}

// AuditSQL is the statement of one audit page: columns of the calls f
// selects, after the cursor, in the audit order (started_at, seq), limit
// rows at most.
//
// Every equality filter has an index (column, started_at, seq), so the page
// is a range of that index whichever filter leads; the cursor is a range
// condition on the same index (started_at >= its time, then the row
// comparison for rows of the same instant), so page 10,000 starts where it
// should instead of stepping over every row before it. The vendor_txn_id
// index is partial (on a non-empty vendor_txn_id): the same literal condition is
// written into the query, since no planner can prove it from a bound value.
func AuditSQL(d Dialect, columns string, f AuditFilter, limit int, after *CallCursor) (string, []any) {
	q := &query{d: d}
	for _, eq := range [...]struct{ col, val string }{
		{"run_label", f.RunLabel}, {"key_id", f.KeyID}, {"vendor", f.Vendor},
		{"outcome", f.Outcome}, {"cost_state", f.CostState}, {"vendor_txn_id", f.VendorTxnID},
	} {
		if eq.val != "" {
			q.where = append(q.where, eq.col+" = "+q.arg(eq.val))
		}
	}
	if f.VendorTxnID != "" {
		q.where = append(q.where, "vendor_txn_id <> ''")
	}
	if !f.Since.IsZero() {
		q.where = append(q.where, "started_at >= "+q.arg(d.Time(f.Since)))
	}
	if !f.Until.IsZero() {
		q.where = append(q.where, "started_at < "+q.arg(d.Time(f.Until)))
	}
	if after != nil {
		at := d.Time(after.StartedAt)
		q.where = append(q.where, "started_at >= "+q.arg(at),
			"(started_at, seq) > ("+q.arg(at)+", "+q.arg(after.Seq)+")")
	}
	return `SELECT ` + columns + ` FROM calls` + q.whereClause() +
		` ORDER BY started_at, seq LIMIT ` + q.arg(limit+1), q.args
}

// SummarySQL is the statement of a summary: the daily rollups (call_days)
// of f's run and day, summed by run, vendor, endpoint and outcome, in the
// columns of SummaryRow. A rollup row whose calls all moved to another
// outcome (a settlement can change it) counts nothing and is left out.
// call_days is keyed by day first and indexed by (run_label, day).
func SummarySQL(d Dialect, f SummaryFilter) (string, []any) {
	q := &query{d: d}
	if f.RunLabel != "" {
		q.where = append(q.where, "run_label = "+q.arg(f.RunLabel))
	}
	if !f.Day.IsZero() {
		q.where = append(q.where, "day = "+q.arg(d.Day(f.Day)))
	}
	return `SELECT run_label, vendor, endpoint, outcome, sum(calls), sum(forwarded), sum(replays),
			sum(cap_hits), sum(refused), sum(spent), sum(reserved)
		FROM call_days` + q.whereClause() + `
		GROUP BY run_label, vendor, endpoint, outcome
		HAVING sum(calls) <> 0
		ORDER BY run_label, vendor, endpoint, outcome`, q.args
}

// RetentionStates are the cost states of calls retain_calls may delete:
// final ones that hold no money (settled, released, and refusals). A
// reserved, unknown or unpriced call is kept whatever its age: reconciling
// it may still move money.
var RetentionStates = []string{CostSettled, CostReleased, CostNone}

// RetentionSQL selects the keys (seq) of at most limit calls retention may
// delete that started before before, oldest first: a range of the
// started_at index.
func RetentionSQL(d Dialect, before time.Time, limit int) (string, []any) {
	q := &query{d: d}
	// Arguments in the order their placeholders are written: "?" is
	// positional.
	q.where = append(q.where, "started_at < "+q.arg(d.Time(before)))
	states := make([]string, len(RetentionStates))
	for i, st := range RetentionStates {
		states[i] = q.arg(st)
	}
	q.where = append(q.where, "cost_state IN ("+strings.Join(states, ", ")+")")
	return `SELECT seq FROM calls` + q.whereClause() + ` ORDER BY started_at, seq LIMIT ` + q.arg(limit), q.args
}

// Placeholders of the SQL backends.
func QuestionMark(int) string { return "?" }

// DollarN is Postgres's placeholder.
func DollarN(n int) string { return "$" + strconv.Itoa(n) }
