package integration

import (
	"strings"
	"testing"

	"github.com/keybrake/keybrake/integration/simvendor"
)

var resendAll = []string{"POST /emails", "POST /emails/batch", "POST /api-keys", "GET /emails/*", "POST /broadcasts"}

func resendPost(path, body string, hdr ...string) capRequest {
	return capRequest{vendor: "resend", method: "POST", path: path, header: jsonHeader(hdr...), body: body}
}

// resendCapCases: findings 1 (Resend), 8 and 9 (Resend) of issue 7.
var resendCapCases = []capCase{
	{"1/resend-replay-with-another-payload", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("0.002")
		k := c.issue(t, capSpec{vendor: "resend", total: cap, endpoint: resendAll})
		one := `{"from":"a@example.com","to":"b@example.com","subject":"hi","html":"x"}`
		wantStatus(t, "first send", c.do(t, k, resendPost("/emails", one, "Idempotency-Key", "k")), 200, "id")
		wantStatus(t, "true replay", c.do(t, k, resendPost("/emails", one, "Idempotency-Key", "k")), 200, "id")
		many := `{"from":"a@example.com","to":["` + strings.Repeat(`c@example.com","`, 40) + `d@example.com"],"subject":"hi","html":"x"}`
		wantStatus(t, "same key, 41 recipients", c.do(t, k, resendPost("/emails", many, "Idempotency-Key", "k")), 409, "invalid_idempotent_request")
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"8/resend-api-keys-refused", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1")
		k := c.issue(t, capSpec{vendor: "resend", total: cap, endpoint: resendAll})
		wantStatus(t, "POST /api-keys", c.do(t, k, resendPost("/api-keys", `{"name":"mine"}`)), 403, "")
		for _, e := range sim.Events() {
			if e.Kind == simvendor.KindCredentialMinted {
				t.Errorf("a credential was minted: %s", e.Object)
			}
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"9/resend-every-recipient-counted", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("0.0045") // five emails at $0.0009
		k := c.issue(t, capSpec{vendor: "resend", total: cap, endpoint: resendAll})
		commas := `{"from":"a@example.com","to":"b@example.com,c@example.com,d@example.com,e@example.com,f@example.com,g@example.com","subject":"s","html":"x"}`
		wantStatus(t, "six recipients in one string", c.do(t, k, resendPost("/emails", commas)), 429, "")
		asForm := capRequest{vendor: "resend", method: "POST", path: "/emails",
			header: formHeader(), body: `{"from":"a@example.com","to":["b@example.com","c@example.com"],"subject":"s","html":"x"}`}
		if r := c.do(t, k, asForm); r.status < 400 {
			t.Errorf("a JSON body sent as a form: %s", r)
		}
		batch := `[{"from":"a@example.com","to":["b@example.com","c@example.com"],"subject":"s","html":"x"},` +
			`{"from":"a@example.com","to":"d@example.com","cc":"e@example.com,f@example.com","subject":"s","html":"x"}]`
		wantStatus(t, "batch of five recipients", c.do(t, k, resendPost("/emails/batch", batch)), 200, "data")
		wantStatus(t, "one more", c.do(t, k, resendPost("/emails", `{"from":"a@example.com","to":"z@example.com","subject":"s","html":"x"}`)), 429, "")
		wantWithinCap(t, c, sim, k, *cap)
	}},
}
