package keyapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func TestSummary(t *testing.T) {
	e := newEnv(t)
	e.store.summary["run-a"] = []ledger.SummaryRow{
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "", Outcome: "endpoint_denied", Calls: 1, Refused: 1},
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "GET /v1/customers/*", Outcome: "forwarded", Calls: 3, Forwarded: 3},
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "cap_hit", Calls: 1, CapHits: 1},
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "forwarded", Calls: 3, Forwarded: 3, Spent: 100_000, Reserved: 200_000},
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "idempotent_replay", Calls: 2, Forwarded: 2, Replays: 2},
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "revoked", Calls: 1, Refused: 1},
	}
	k := e.createKey(`{"vendor":"stripe","total_usd_cap":1.5,"agent_run_label":"run-a","allowed_endpoints":["POST /v1/payment_intents"]}`)
	id := k["key_id"].(string)
	e.store.setUsage(id, func(u *ledger.KeyUsage) { u.Spent, u.Reserved = 100_000, 200_000 })

	rec := e.do(http.MethodGet, "/vault/summary?agent_run_label=run-a", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	counts := func(calls, fwd, replays, capHits, refused int, refusals, spent, reserved string) string {
		return `"calls":` + itoa(calls) + `,"forwarded":` + itoa(fwd) + `,"replays":` + itoa(replays) +
			`,"cap_hits":` + itoa(capHits) + `,"refused":` + itoa(refused) + `,"refusals":{` + refusals +
			`},"spent_usd":` + spent + `,"reserved_usd":` + reserved
	}
	want := `{"agent_run_label":"run-a","day":null,` +
		counts(11, 6, 2, 1, 2, `"cap_hit":1,"endpoint_denied":1,"revoked":1`, "0.1", "0.2") + `,` +
		`"keys":[{"key_id":"` + id + `","vendor":"stripe","status":"active","daily_usd_cap":null,"total_usd_cap":1.5,` +
		`"spent_usd":0.1,"reserved_usd":0.2,"remaining_usd":1.2,"expires_at":"` + k["expires_at"].(string) + `"}],` +
		`"by_vendor":[{"vendor":"stripe",` + counts(11, 6, 2, 1, 2, `"cap_hit":1,"endpoint_denied":1,"revoked":1`, "0.1", "0.2") + `}],` +
		`"by_endpoint":[` +
		`{"vendor":"stripe","endpoint":"(refused before matching)",` + counts(1, 0, 0, 0, 1, `"endpoint_denied":1`, "0", "0") + `},` +
		`{"vendor":"stripe","endpoint":"GET /v1/customers/*",` + counts(3, 3, 0, 0, 0, ``, "0", "0") + `},` +
		`{"vendor":"stripe","endpoint":"POST /v1/payment_intents",` + counts(7, 3, 2, 1, 1, `"cap_hit":1,"revoked":1`, "0.1", "0.2") + `}` +
		`]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body\n%s\nwant\n%s", rec.Body, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSummaryEmptyRun(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodGet, "/vault/summary?agent_run_label=nothing%20here", "")
	want := `{"agent_run_label":"nothing here","day":null,"calls":0,"forwarded":0,"replays":0,"cap_hits":0,"refused":0,"refusals":{},` +
		`"spent_usd":0,"reserved_usd":0,"by_vendor":[],"by_endpoint":[]}` + "\n"
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("status %d body %s", rec.Code, rec.Body)
	}
}

func TestSummaryDay(t *testing.T) {
	e := newEnv(t)
	e.store.summary[""] = []ledger.SummaryRow{
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "forwarded", Calls: 2, Forwarded: 2, Spent: 2_000_000},
		{RunLabel: "run-b", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "cap_hit", Calls: 1, CapHits: 1},
		{RunLabel: "run-b", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "forwarded", Calls: 1, Forwarded: 1, Spent: 500_000},
	}
	rec := e.do(http.MethodGet, "/vault/summary?day=2026-11-29", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := e.store.summaryFilters[len(e.store.summaryFilters)-1]
	if want := (ledger.SummaryFilter{Day: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)}); got != want {
		t.Errorf("filter %+v; want %+v", got, want)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`"agent_run_label":null,"day":"2026-11-29","calls":4,"forwarded":3,`,
		`"spent_usd":2.5,`,
		`"by_run":[{"agent_run_label":"run-a","calls":2,`,
		`{"agent_run_label":"run-b","calls":2,"forwarded":1,"replays":0,"cap_hits":1,"refused":0,"refusals":{"cap_hit":1},"spent_usd":0.5,`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `"keys"`) {
		t.Errorf("a day view lists no keys: %s", body)
	}
}

func TestSummaryCSV(t *testing.T) {
	e := newEnv(t)
	e.store.summary["run-a"] = []ledger.SummaryRow{
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "", Outcome: "unauthenticated", Calls: 1, Refused: 1},
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "idempotent_replay", Calls: 2, Forwarded: 2, Replays: 2},
		{RunLabel: "run-a", Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Outcome: "forwarded", Calls: 3, Forwarded: 3, Spent: 1_234_567, Reserved: 10},
	}
	rec := e.do(http.MethodGet, "/vault/summary?agent_run_label=run-a&format=csv", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("status %d type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	want := "agent_run_label,vendor,endpoint,outcome,calls,forwarded,replays,cap_hits,refused,spent_usd,reserved_usd\r\n" +
		"run-a,stripe,(refused before matching),unauthenticated,1,0,0,0,1,0,0\r\n" +
		"run-a,stripe,POST /v1/payment_intents,idempotent_replay,2,0,2,0,0,0,0\r\n" +
		"run-a,stripe,POST /v1/payment_intents,forwarded,3,3,0,0,0,1.234567,0.00001\r\n"
	if rec.Body.String() != want {
		t.Errorf("csv\n%q\nwant\n%q", rec.Body, want)
	}
}

func TestSummaryValidation(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do(http.MethodGet, "/vault/summary", ""), http.StatusBadRequest, codeParameterMissing, "agent_run_label")
	wantError(t, e.do(http.MethodGet, "/vault/summary?agent_run_label=", ""), http.StatusBadRequest, codeParameterMissing, "agent_run_label")
	wantError(t, e.do(http.MethodGet, "/vault/summary?agent_run_label="+strings.Repeat("x", 801), ""), http.StatusBadRequest, codeParameterInvalid, "agent_run_label")
	wantError(t, e.do(http.MethodGet, "/vault/summary?agent_run_label=a&vendor=stripe", ""), http.StatusBadRequest, codeParameterUnknown, "vendor")
	wantError(t, e.do(http.MethodGet, "/vault/summary?day=29-11-2026", ""), http.StatusBadRequest, codeParameterInvalid, "day")
	wantError(t, e.do(http.MethodGet, "/vault/summary?day=2026-11-29&format=xml", ""), http.StatusBadRequest, codeParameterInvalid, "format")
}

func TestAuditVendorTxnID(t *testing.T) {
	e := newEnv(t)
	e.store.calls = []ledger.Call{
		{CallID: "c1", RunLabel: "run-a", Vendor: "stripe", VendorTxnID: "pi_1", StartedAt: testNow},
		{CallID: "c2", RunLabel: "run-b", Vendor: "stripe", VendorTxnID: "pi_2", StartedAt: testNow},
	}
	rec := e.do(http.MethodGet, "/vault/audit?vendor_txn_id=pi_2", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"call_id":"c2","key_id":"","agent_run_label":"run-b"`) ||
		strings.Contains(rec.Body.String(), `"c1"`) {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if f := e.store.auditFilters[len(e.store.auditFilters)-1]; f.VendorTxnID != "pi_2" {
		t.Errorf("filter %+v", f)
	}
}
