package keyapi

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// Trailers of GET /vault/audit/export: an export is whole when it ends with
// X-Keybrake-Export-Complete: true. A ledger failure after the first rows
// were sent cannot become an error status; it ends the export without that
// trailer and with X-Keybrake-Export-Error saying why.
const (
	TrailerExportComplete = "X-Keybrake-Export-Complete"
	TrailerExportError    = "X-Keybrake-Export-Error"
)

// exportPage is how many calls the export reads per page: the memory it
// holds, whatever the export's length.
const exportPage = maxPageLimit

// exportAudit serves GET /vault/audit/export: every call the audit filter
// selects, oldest first, as JSON lines (format=jsonl, the default: one
// audit call object per line) or CSV (format=csv, the audit's CSV columns),
// streamed page by page through the audit's keyset cursor, so an export of
// any length holds one page in memory and costs each page the same. It is
// for an archive before retain_calls deletes old calls.
func (h *Handler) exportAudit(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, slices.Concat(auditParams, []string{"format"})...)
	if err != nil {
		return err
	}
	f, err := h.auditFilter(r, q)
	if err != nil {
		return err
	}
	var write func(io.Writer, ledger.Call) error
	contentType := "application/jsonl; charset=utf-8"
	switch q.Get("format") {
	case "", "jsonl":
		write = writeJSONLine
	case "csv":
		contentType = "text/csv; charset=utf-8"
		write = csvWriter(w)
	default:
		return invalidField("format", "format must be jsonl or csv")
	}
	f.Limit = exportPage
	// The first page is read before anything is written: a bad cursor or
	// a ledger that is down is still a plain error answer.
	page, next, err := h.store.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Trailer", TrailerExportComplete+", "+TrailerExportError)
	w.WriteHeader(http.StatusOK)
	if q.Get("format") == "csv" {
		if err := write(w, ledger.Call{}); err != nil { // the header row
			return nil
		}
	}
	rc := http.NewResponseController(w)
	for {
		for _, c := range page {
			if err := write(w, c); err != nil {
				h.log.Debug("key API: export cut short by the client", zap.Error(err))
				return nil
			}
		}
		if err := rc.Flush(); err != nil {
			h.log.Debug("key API: export cut short by the client", zap.Error(err))
			return nil
		}
		if next == "" {
			break
		}
		f.Cursor = next
		if page, next, err = h.store.Audit(r.Context(), f); err != nil {
			h.log.Error("key API: export cut short by the ledger", zap.Error(err))
			hdr.Set(TrailerExportError, "the ledger could not be read; the export is incomplete")
			return nil
		}
	}
	hdr.Set(TrailerExportComplete, "true")
	return nil
}

// writeJSONLine writes one call as the audit shows it, on a line.
func writeJSONLine(w io.Writer, c ledger.Call) error {
	b, err := json.Marshal(newCallView(c))
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// csvWriter returns a writer of CSV rows on w: the header for the zero
// Call (written first), then one row per call, each flushed to w.
func csvWriter(w io.Writer) func(io.Writer, ledger.Call) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	row := make([]string, len(csvColumns))
	return func(_ io.Writer, c ledger.Call) error {
		if c.CallID == "" {
			_ = cw.Write(csvColumns)
		} else {
			_ = cw.Write(csvRow(row, c))
		}
		cw.Flush()
		return cw.Error()
	}
}
