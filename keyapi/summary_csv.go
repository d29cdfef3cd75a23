package keyapi

import (
	"encoding/csv"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// summaryCSVColumns is the header of GET /vault/summary?format=csv: one row
// per run, vendor, endpoint and outcome, the finest grain the ledger sums.
var summaryCSVColumns = []string{
	"agent_run_label", "vendor", "endpoint", "outcome", "calls", "forwarded", "replays",
	"cap_hits", "refused", "spent_usd", "reserved_usd",
}

// summaryCSV writes the summary rows as CSV.
func (h *Handler) summaryCSV(w http.ResponseWriter, req summaryRequest, rows []ledger.SummaryRow) error {
	name := "keybrake-summary.csv"
	if req.day != "" {
		name = "keybrake-summary-" + req.day + ".csv"
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/csv; charset=utf-8")
	hdr.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)

	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	_ = cw.Write(summaryCSVColumns)
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, r := range rows {
		spent, _ := r.Spent.MarshalJSON()
		reserved, _ := r.Reserved.MarshalJSON()
		cells := []string{
			r.RunLabel, r.Vendor, endpointName(r.Endpoint), r.Outcome, itoa(r.Calls),
			itoa(r.Forwarded - r.Replays), itoa(r.Replays), itoa(r.CapHits), itoa(r.Refused),
			string(spent), string(reserved),
		}
		for i, s := range cells {
			cells[i] = csvSafe(s)
		}
		_ = cw.Write(cells)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		h.log.Debug("key API: summary CSV cut short", zap.Error(err))
	}
	return nil
}
