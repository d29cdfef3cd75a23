package keyapi

import (
	"encoding/csv"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// maxCSVRows bounds one CSV export; the limit parameter may lower it.
const maxCSVRows = 100_000

// Headers of a CSV export that stopped at its row bound.
const (
	headerTruncated  = "X-Keybrake-Truncated"
	headerNextCursor = "X-Keybrake-Next-Cursor"
)

// csvColumns is the header row, in callView's order.
var csvColumns = []string{
	"call_id", "key_id", "agent_run_label", "vendor", "method", "path", "endpoint",
	"status_code", "outcome", "reserved_usd", "cost_usd", "vendor_amount",
	"vendor_currency", "vendor_txn_id", "idempotency_key", "replay_of",
	"started_at", "finished_at", "cost_state",
	"resolved_by", "resolved_at", "resolve_reason", "tag", "count",
}

// auditCSV reads every page of the audit from f.Cursor on, up to maxRows
// calls, then writes them as CSV. The rows are read before anything is
// written so that a ledger failure is still a clean JSON error. When the
// bound stops the export, X-Keybrake-Truncated: true and
// X-Keybrake-Next-Cursor tell where to resume.
func (h *Handler) auditCSV(w http.ResponseWriter, r *http.Request, f ledger.AuditFilter, maxRows int) error {
	var calls []ledger.Call
	next := ""
	for {
		f.Limit = min(maxPageLimit, maxRows-len(calls))
		page, cursor, err := h.store.Audit(r.Context(), f)
		if err != nil {
			return err
		}
		calls = append(calls, page...)
		next = cursor
		if cursor == "" || len(calls) >= maxRows || len(page) == 0 {
			break
		}
		f.Cursor = cursor
	}
	if len(calls) > maxRows {
		calls = calls[:maxRows]
	}

	hdr := w.Header()
	hdr.Set("Content-Type", "text/csv; charset=utf-8")
	hdr.Set("Content-Disposition", `attachment; filename="keybrake-audit.csv"`)
	if next != "" {
		hdr.Set(headerTruncated, "true")
		hdr.Set(headerNextCursor, next)
	}
	w.WriteHeader(http.StatusOK)

	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	_ = cw.Write(csvColumns)
	row := make([]string, len(csvColumns))
	for _, c := range calls {
		_ = cw.Write(csvRow(row, c))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		h.log.Debug("key API: CSV export cut short", zap.Error(err))
	}
	return nil
}

// csvRow fills row with the cells of one call, neutralised against formula
// injection.
func csvRow(row []string, c ledger.Call) []string {
	amount := ""
	if c.VendorAmount != nil {
		amount = strconv.FormatInt(*c.VendorAmount, 10)
	}
	finished := ""
	if c.FinishedAt != nil {
		finished = formatTime(*c.FinishedAt)
	}
	resolved := ""
	if c.ResolvedAt != nil {
		resolved = formatTime(*c.ResolvedAt)
	}
	reserved, _ := c.Reserved.MarshalJSON()
	cost, _ := c.Cost.MarshalJSON()
	cells := [...]string{
		c.CallID, c.KeyID, c.RunLabel, c.Vendor, c.Method, c.Path, c.Endpoint,
		strconv.Itoa(c.StatusCode), c.Outcome, string(reserved), string(cost), amount,
		c.VendorCurrency, c.VendorTxnID, c.IdempotencyKey, c.ReplayOf,
		formatTime(c.StartedAt), finished, c.CostState,
		c.ResolvedBy, resolved, c.ResolveReason, c.Tag, strconv.FormatInt(max(c.Count, 1), 10),
	}
	for i, s := range cells {
		row[i] = csvSafe(s)
	}
	return row
}

// csvSafe prefixes a cell that a spreadsheet would read as a formula
// (starting with =, +, -, @, tab or carriage return) with a single quote.
func csvSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
