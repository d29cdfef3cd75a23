package keyapi

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

func sampleCalls() []ledger.Call {
	amount := int64(1999)
	fin := testNow.Add(1500 * time.Millisecond)
	return []ledger.Call{
		{
			CallID: "call1", KeyID: "vkA", RunLabel: "run-a", Vendor: "stripe",
			Method: "POST", Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents",
			StatusCode: 200, Outcome: ledger.OutcomeForwarded, Reserved: 19_990_000, Cost: 100_000,
			VendorAmount: &amount, VendorCurrency: "usd", VendorTxnID: "pi_123",
			IdempotencyKey: "idem-1", CostState: ledger.CostSettled,
			StartedAt: testNow, FinishedAt: &fin,
		},
		{
			CallID: "call2", KeyID: "", RunLabel: "", Vendor: "twilio",
			Method: "GET", Path: "/2010-04-01/Accounts", Outcome: ledger.OutcomeUnauthenticated,
			StatusCode: 401, CostState: ledger.CostNone, StartedAt: testNow.Add(time.Second),
		},
	}
}

func TestAuditJSON(t *testing.T) {
	e := newEnv(t)
	e.store.calls = sampleCalls()
	rec := e.do(http.MethodGet, "/vault/audit", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := `{"data":[` +
		`{"call_id":"call1","key_id":"vkA","agent_run_label":"run-a","vendor":"stripe","method":"POST",` +
		`"path":"/v1/payment_intents","endpoint":"POST /v1/payment_intents","status_code":200,"outcome":"forwarded",` +
		`"reserved_usd":19.99,"cost_usd":0.1,"vendor_amount":1999,"vendor_currency":"usd","vendor_txn_id":"pi_123",` +
		`"idempotency_key":"idem-1","replay_of":"","started_at":"2025-03-01T12:00:00.123456789Z",` +
		`"finished_at":"2025-03-01T12:00:01.623456789Z","cost_state":"settled","rule":null,"resolved_by":null,"resolved_at":null,"resolve_reason":null,"tag":null,"count":1},` +
		`{"call_id":"call2","key_id":"","agent_run_label":"","vendor":"twilio","method":"GET",` +
		`"path":"/2010-04-01/Accounts","endpoint":"","status_code":401,"outcome":"unauthenticated",` +
		`"reserved_usd":0,"cost_usd":0,"vendor_amount":null,"vendor_currency":"","vendor_txn_id":"",` +
		`"idempotency_key":"","replay_of":"","started_at":"2025-03-01T12:00:01.123456789Z",` +
		`"finished_at":null,"cost_state":"none","rule":null,"resolved_by":null,"resolved_at":null,"resolve_reason":null,"tag":null,"count":1}` +
		`],"next_cursor":null}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body\n%s\nwant\n%s", rec.Body, want)
	}
	if f := e.store.lastAuditFilter(); f.Limit != 100 {
		t.Errorf("default limit %d", f.Limit)
	}
}

func TestAuditFiltersAndPagination(t *testing.T) {
	e := newEnv(t)
	e.store.calls = sampleCalls()
	rec := e.do(http.MethodGet, "/vault/audit?agent_run_label=run-a&key_id=vkA&vendor=stripe&outcome=forwarded"+
		"&cost_state=settled&since=2025-03-01T11:00:00Z&until=2025-03-01T13:00:00.5%2B01:00&cursor=o0&limit=1", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	f := e.store.lastAuditFilter()
	want := ledger.AuditFilter{
		RunLabel: "run-a", KeyID: "vkA", Vendor: "stripe", Outcome: "forwarded", CostState: "settled",
		Since: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC), Until: time.Date(2025, 3, 1, 12, 0, 0, 5e8, time.UTC),
		Cursor: "o0", Limit: 1,
	}
	if f != want {
		t.Errorf("filter\n%+v\nwant\n%+v", f, want)
	}
	m := decodeMap(t, rec)
	if len(m["data"].([]any)) != 1 {
		t.Errorf("data %v", m["data"])
	}

	m = decodeMap(t, e.do(http.MethodGet, "/vault/audit?limit=1", ""))
	if m["next_cursor"] != "o1" || m["data"].([]any)[0].(map[string]any)["call_id"] != "call1" {
		t.Errorf("page 1: %v", m)
	}
	m = decodeMap(t, e.do(http.MethodGet, "/vault/audit?limit=1&cursor=o1", ""))
	if m["next_cursor"] != nil || m["data"].([]any)[0].(map[string]any)["call_id"] != "call2" {
		t.Errorf("page 2: %v", m)
	}
}

// TestAuditDay: day is the UTC day's window, narrowed (never widened) by
// since and until.
func TestAuditDay(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for query, want := range map[string][2]time.Time{
		"day=2025-03-01": {day, day.AddDate(0, 0, 1)},
		"day=2025-03-01&since=2025-03-01T12:00:00Z":                            {day.Add(12 * time.Hour), day.AddDate(0, 0, 1)},
		"day=2025-03-01&since=2025-02-01T00:00:00Z&until=2025-03-01T01:00:00Z": {day, day.Add(time.Hour)},
		"day=2025-03-01&until=2025-04-01T00:00:00Z":                            {day, day.AddDate(0, 0, 1)},
	} {
		if rec := e.do(http.MethodGet, "/vault/audit?"+query, ""); rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", query, rec.Code, rec.Body)
		}
		if f := e.store.lastAuditFilter(); !f.Since.Equal(want[0]) || !f.Until.Equal(want[1]) {
			t.Errorf("%s: since %s until %s; want %s, %s", query, f.Since, f.Until, want[0], want[1])
		}
	}
}

func TestAuditValidation(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ query, code, field string }{
		{"since=yesterday", codeParameterInvalid, "since"},
		{"since=2025-03-01", codeParameterInvalid, "since"},
		{"until=2025-03-01T12:00:00", codeParameterInvalid, "until"},
		{"since=2025-03-01T12:00:00Z&until=2025-03-01T12:00:00Z", codeParameterInvalid, "until"},
		{"since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z", codeParameterInvalid, "until"},
		{"limit=0", codeParameterInvalid, "limit"},
		{"limit=1001", codeParameterInvalid, "limit"},
		{"format=xml", codeParameterInvalid, "format"},
		{"format=csv&limit=100001", codeParameterInvalid, "limit"},
		{"key_id=" + strings.Repeat("k", 65), codeParameterInvalid, "key_id"},
		{"outcome=" + strings.Repeat("o", 201), codeParameterInvalid, "outcome"},
		{"run=x", codeParameterUnknown, "run"},
		{"outcome=a&outcome=b", codeParameterInvalid, "outcome"},
		{"day=2025-3-1", codeParameterInvalid, "day"},
		{"day=2025-03-01&since=2025-03-02T00:00:00Z", codeParameterInvalid, "day"},
	}
	for _, tc := range cases {
		rec := e.do(http.MethodGet, "/vault/audit?"+tc.query, "")
		wantError(t, rec, http.StatusBadRequest, tc.code, tc.field)
	}
}

func readCSV(t *testing.T, body string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v\n%s", err, body)
	}
	return rows
}

func TestAuditCSVEscaping(t *testing.T) {
	e := newEnv(t)
	neg := int64(-500)
	e.store.calls = []ledger.Call{
		{
			CallID: "c1", KeyID: "vkA", RunLabel: `=HYPERLINK("http://evil","x")`, Vendor: "stripe",
			Method: "POST", Path: "/v1/a,b\"c\nd", Endpoint: "+cmd", Outcome: "@SUM(1)",
			VendorAmount: &neg, VendorTxnID: "\tpi_x", IdempotencyKey: "\rk",
			Reserved: 1_500_000, CostState: "reserved", StartedAt: testNow,
		},
		sampleCalls()[0],
	}
	rec := e.do(http.MethodGet, "/vault/audit?format=csv&agent_run_label=", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Errorf("Content-Disposition %q", cd)
	}
	if rec.Header().Get(headerTruncated) != "" {
		t.Error("complete export marked truncated")
	}
	rows := readCSV(t, rec.Body.String())
	if !slices.Equal(rows[0], csvColumns) {
		t.Errorf("header %v", rows[0])
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	col := func(row []string, name string) string { return row[slices.Index(csvColumns, name)] }
	r := rows[1]
	checks := map[string]string{
		"agent_run_label": `'=HYPERLINK("http://evil","x")`,
		"path":            "/v1/a,b\"c\nd",
		"endpoint":        "'+cmd",
		"outcome":         "'@SUM(1)",
		"vendor_amount":   "'-500",
		"vendor_txn_id":   "'\tpi_x",
		"reserved_usd":    "1.5",
		"cost_usd":        "0",
		"finished_at":     "",
		"started_at":      "2025-03-01T12:00:00.123456789Z",
		"status_code":     "0",
	}
	for name, want := range checks {
		if got := col(r, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	r = rows[2]
	if col(r, "call_id") != "call1" || col(r, "vendor_amount") != "1999" || col(r, "reserved_usd") != "19.99" ||
		col(r, "finished_at") != "2025-03-01T12:00:01.623456789Z" {
		t.Errorf("row 2 %v", r)
	}
	if !strings.HasSuffix(rec.Body.String(), "\r\n") {
		t.Error("rows are not CRLF-terminated")
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "plain": "plain", "=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@a": "'@a",
		"\tx": "'\tx", "\rx": "'\rx", "a=b": "a=b", "'=x": "'=x",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func manyCalls(n int) []ledger.Call {
	calls := make([]ledger.Call, n)
	for i := range calls {
		calls[i] = ledger.Call{CallID: fmt.Sprintf("c%05d", i), Vendor: "stripe", RunLabel: "bulk",
			Cost: money.Micros(i), StartedAt: testNow.Add(time.Duration(i) * time.Millisecond)}
	}
	return calls
}

func TestAuditCSVReadsAllPages(t *testing.T) {
	e := newEnv(t)
	e.store.calls = manyCalls(2500)
	rec := e.do(http.MethodGet, "/vault/audit?format=csv&agent_run_label=bulk", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	rows := readCSV(t, rec.Body.String())
	if len(rows) != 2501 || rows[1][0] != "c00000" || rows[2500][0] != "c02499" {
		t.Fatalf("%d rows, first %v last %v", len(rows), rows[1], rows[len(rows)-1])
	}
	if rec.Header().Get(headerTruncated) != "" || rec.Header().Get(headerNextCursor) != "" {
		t.Error("complete export marked truncated")
	}
	var cursors []string
	for _, f := range e.store.auditFilters {
		if f.RunLabel != "bulk" || f.Limit < 1 || f.Limit > maxPageLimit {
			t.Errorf("page filter %+v", f)
		}
		cursors = append(cursors, f.Cursor)
	}
	if fmt.Sprint(cursors) != "[ o1000 o2000]" {
		t.Errorf("cursors %q", cursors)
	}
}

func TestAuditCSVBound(t *testing.T) {
	e := newEnv(t)
	e.store.calls = manyCalls(2500)
	rec := e.do(http.MethodGet, "/vault/audit?format=csv&limit=1500&cursor=o10", "")
	rows := readCSV(t, rec.Body.String())
	if len(rows) != 1501 || rows[1][0] != "c00010" {
		t.Fatalf("%d rows, first %v", len(rows), rows[1])
	}
	if rec.Header().Get(headerTruncated) != "true" || rec.Header().Get(headerNextCursor) != "o1510" {
		t.Errorf("truncation headers %v", rec.Header())
	}
}

func TestAuditCSVStoreFailure(t *testing.T) {
	e := newEnv(t)
	e.store.calls = manyCalls(10)
	e.store.setErr(fmt.Errorf("x: %w", ledger.ErrUnavailable))
	rec := e.do(http.MethodGet, "/vault/audit?format=csv", "")
	wantError(t, rec, http.StatusServiceUnavailable, "ledger_unavailable", "")
}
