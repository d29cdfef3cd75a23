package keyapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/ledger"
)

func TestSummary(t *testing.T) {
	e := newEnv(t)
	e.store.summary["run-a"] = []ledger.SummaryRow{
		{Vendor: "stripe", Endpoint: "GET /v1/customers/*", Calls: 3, Forwarded: 3, Spent: 0, Reserved: 0},
		{Vendor: "stripe", Endpoint: "POST /v1/payment_intents", Calls: 5, Forwarded: 3, CapHits: 1, Refused: 1, Spent: 100_000, Reserved: 200_000},
		{Vendor: "twilio", Endpoint: "", Calls: 2, Refused: 2},
		{Vendor: "twilio", Endpoint: "POST /2010-04-01/Accounts/*/Messages.json", Calls: 4, Forwarded: 4, Spent: 200_000, Reserved: 100_000},
	}
	rec := e.do(http.MethodGet, "/vault/summary?agent_run_label=run-a", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := `{"agent_run_label":"run-a","calls":14,"forwarded":10,"cap_hits":1,"refused":3,"spent_usd":0.3,"reserved_usd":0.3,` +
		`"by_vendor":[` +
		`{"vendor":"stripe","calls":8,"forwarded":6,"cap_hits":1,"refused":1,"spent_usd":0.1,"reserved_usd":0.2},` +
		`{"vendor":"twilio","calls":6,"forwarded":4,"cap_hits":0,"refused":2,"spent_usd":0.2,"reserved_usd":0.1}],` +
		`"by_endpoint":[` +
		`{"vendor":"stripe","endpoint":"GET /v1/customers/*","calls":3,"forwarded":3,"cap_hits":0,"refused":0,"spent_usd":0,"reserved_usd":0},` +
		`{"vendor":"stripe","endpoint":"POST /v1/payment_intents","calls":5,"forwarded":3,"cap_hits":1,"refused":1,"spent_usd":0.1,"reserved_usd":0.2},` +
		`{"vendor":"twilio","endpoint":"","calls":2,"forwarded":0,"cap_hits":0,"refused":2,"spent_usd":0,"reserved_usd":0},` +
		`{"vendor":"twilio","endpoint":"POST /2010-04-01/Accounts/*/Messages.json","calls":4,"forwarded":4,"cap_hits":0,"refused":0,"spent_usd":0.2,"reserved_usd":0.1}` +
		`]}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body\n%s\nwant\n%s", rec.Body, want)
	}
}

func TestSummaryEmptyRun(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodGet, "/vault/summary?agent_run_label=nothing%20here", "")
	want := `{"agent_run_label":"nothing here","calls":0,"forwarded":0,"cap_hits":0,"refused":0,"spent_usd":0,"reserved_usd":0,"by_vendor":[],"by_endpoint":[]}` + "\n"
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("status %d body %s", rec.Code, rec.Body)
	}
}

func TestSummaryValidation(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do(http.MethodGet, "/vault/summary", ""), http.StatusBadRequest, codeParameterMissing, "agent_run_label")
	wantError(t, e.do(http.MethodGet, "/vault/summary?agent_run_label=", ""), http.StatusBadRequest, codeParameterMissing, "agent_run_label")
	wantError(t, e.do(http.MethodGet, "/vault/summary?agent_run_label="+strings.Repeat("x", 801), ""), http.StatusBadRequest, codeParameterInvalid, "agent_run_label")
	wantError(t, e.do(http.MethodGet, "/vault/summary?agent_run_label=a&vendor=stripe", ""), http.StatusBadRequest, codeParameterUnknown, "vendor")
}
