package ledgertest

import (
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// PlanCase is one read of the audit, the summaries or retention, whose plan
// a backend's plan test checks on a seeded ledger: it must be an index
// range of Table whose condition names one of Columns, never a walk of the whole
// table (docs/ledger.md).
type PlanCase struct {
	Name    string
	SQL     string
	Args    []any
	Table   string   // calls or call_days
	Columns []string // the index condition names one of them at least
}

// PlanSeedDay is the UTC day the plan tests' seeded calls start on; their
// seeds spread calls over the days after it.
var PlanSeedDay = time.Date(2031, time.March, 2, 0, 0, 0, 0, time.UTC)

// PlanCases are the reads every backend answers through an index: each
// audit filter alone, on a day, and on a deep page (after a cursor), both
// summary views, and retention's selection.
func PlanCases(d ledger.Dialect, callColumns string) []PlanCase {
	day := PlanSeedDay.AddDate(0, 0, 3)
	deep := &ledger.CallCursor{StartedAt: day.Add(7 * time.Hour), Seq: 12345}
	type filterCase struct {
		name   string
		f      ledger.AuditFilter
		column string
	}
	filters := []filterCase{
		{"run", ledger.AuditFilter{RunLabel: "run/7"}, "run_label"},
		{"key", ledger.AuditFilter{KeyID: "key/17"}, "key_id"},
		{"vendor", ledger.AuditFilter{Vendor: "twilio"}, "vendor"},
		{"outcome", ledger.AuditFilter{Outcome: ledger.OutcomeCapHit}, "outcome"},
		{"cost_state", ledger.AuditFilter{CostState: ledger.CostUnknown}, "cost_state"},
		{"vendor_txn_id", ledger.AuditFilter{VendorTxnID: "pi_77"}, "vendor_txn_id"},
		{"since", ledger.AuditFilter{Since: day}, "started_at"},
		{"until", ledger.AuditFilter{Until: day}, "started_at"},
		{"day", ledger.AuditFilter{Since: day, Until: day.AddDate(0, 0, 1)}, "started_at"},
	}
	var out []PlanCase
	for _, fc := range filters {
		for _, page := range []struct {
			suffix string
			after  *ledger.CallCursor
		}{{"", nil}, {" page 10000", deep}} {
			q, args := ledger.AuditSQL(d, callColumns, fc.f, 100, page.after)
			out = append(out, PlanCase{Name: "audit " + fc.name + page.suffix, SQL: q, Args: args, Table: "calls", Columns: []string{fc.column}})
		}
		withDay := fc.f
		withDay.Since, withDay.Until = day, day.AddDate(0, 0, 1)
		q, args := ledger.AuditSQL(d, callColumns, withDay, 100, nil)
		out = append(out, PlanCase{Name: "audit " + fc.name + " on a day", SQL: q, Args: args, Table: "calls", Columns: []string{fc.column}})
	}
	q, args := ledger.AuditSQL(d, callColumns, ledger.AuditFilter{}, 100, deep)
	out = append(out, PlanCase{Name: "audit page 10000", SQL: q, Args: args, Table: "calls", Columns: []string{"started_at"}})
	q, args = ledger.SummarySQL(d, ledger.SummaryFilter{RunLabel: "run/7"})
	out = append(out, PlanCase{Name: "summary run", SQL: q, Args: args, Table: "call_days", Columns: []string{"run_label"}})
	q, args = ledger.SummarySQL(d, ledger.SummaryFilter{Day: day})
	out = append(out, PlanCase{Name: "summary day", SQL: q, Args: args, Table: "call_days", Columns: []string{"day"}})
	q, args = ledger.SummarySQL(d, ledger.SummaryFilter{RunLabel: "run/7", Day: day})
	out = append(out, PlanCase{Name: "summary run on a day", SQL: q, Args: args, Table: "call_days", Columns: []string{"run_label", "day"}})
	q, args = ledger.RetentionSQL(d, day, 500)
	out = append(out, PlanCase{Name: "retention", SQL: q, Args: args, Table: "calls", Columns: []string{"started_at"}})
	return out
}
