package keyapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// TestExportJSONL streams every call over several pages, one JSON object
// a line, and ends with the completion trailer.
func TestExportJSONL(t *testing.T) {
	e := newEnv(t)
	e.store.calls = manyCalls(2500)
	rec := e.do(http.MethodGet, "/vault/audit/export?since=2025-03-01T12:00:00Z&until=2025-03-02T00:00:00Z", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	sc := bufio.NewScanner(rec.Body)
	n := 0
	for sc.Scan() {
		var v callView
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %d: %v: %s", n, err, sc.Bytes())
		}
		if want := fmt.Sprintf("c%05d", n); v.CallID != want || v.Count != 1 {
			t.Fatalf("line %d is %s (count %d); want %s", n, v.CallID, v.Count, want)
		}
		n++
	}
	if n != 2500 {
		t.Errorf("%d lines; want 2500", n)
	}
	if got := rec.Result().Trailer.Get(TrailerExportComplete); got != "true" {
		t.Errorf("trailer %s = %q; want true", TrailerExportComplete, got)
	}
	if pages := len(e.store.auditFilters); pages != 3 {
		t.Errorf("%d pages read; want 3 of at most %d", pages, exportPage)
	}
	for _, f := range e.store.auditFilters {
		if f.Limit != exportPage || !f.Since.Equal(testNow.Truncate(time.Hour)) {
			t.Errorf("page filter %+v", f)
		}
	}
}

func TestExportCSV(t *testing.T) {
	e := newEnv(t)
	e.store.calls = manyCalls(3)
	rec := e.do(http.MethodGet, "/vault/audit/export?format=csv", "")
	rows := readCSV(t, rec.Body.String())
	if len(rows) != 4 || rows[0][0] != "call_id" || rows[3][0] != "c00002" || rows[3][len(rows[3])-1] != "1" {
		t.Fatalf("rows %v", rows)
	}
	if got := rec.Result().Trailer.Get(TrailerExportComplete); got != "true" {
		t.Errorf("trailer %s = %q; want true", TrailerExportComplete, got)
	}
}

// TestExportLedgerFails: a failure before the first row is an error
// answer; after it, the export ends without the completion trailer.
func TestExportLedgerFails(t *testing.T) {
	e := newEnv(t)
	e.store.err = ledger.ErrUnavailable
	if rec := e.do(http.MethodGet, "/vault/audit/export", ""); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("ledger down: status %d; want 503", rec.Code)
	}
	e = newEnv(t)
	e.store.calls = manyCalls(1500)
	e.store.auditErrAfter = 1
	rec := e.do(http.MethodGet, "/vault/audit/export", "")
	if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), "\n") != exportPage {
		t.Fatalf("status %d, %d lines", rec.Code, strings.Count(rec.Body.String(), "\n"))
	}
	tr := rec.Result().Trailer
	if tr.Get(TrailerExportComplete) != "" || tr.Get(TrailerExportError) == "" {
		t.Errorf("trailers %v; want an error and no completion", tr)
	}
	wantError(t, e.do(http.MethodGet, "/vault/audit/export?format=xml", ""), http.StatusBadRequest, codeParameterInvalid, "format")
	wantError(t, e.do(http.MethodGet, "/vault/audit/export?limit=5", ""), http.StatusBadRequest, codeParameterUnknown, "limit")
}
