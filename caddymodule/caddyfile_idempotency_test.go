package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Finding 1: a declared vendor gets free replays only with an idempotency
// block; the block adapts to JSON and back.
func TestAdaptDeclaredIdempotency(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor acme {
			secret_key {env.ACME_KEY}
			errors stripe
			idempotency Idempotency-Key {
				window 24h
				methods POST PUT
				paths /orders /orders/*/pay
				scope_header Acme-Account
				scope_header Acme-Team
			}
		}
		vendor plain {
			secret_key x
		}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `"idempotency":{"header":"Idempotency-Key","methods":["POST","PUT"],"paths":["/orders","/orders/*/pay"],"window":86400000000000,"scope_headers":["Acme-Account","Acme-Team"]}`
	if !strings.Contains(got, want) {
		t.Fatalf("keybrake app =\n%s\nwant it to contain\n%s", got, want)
	}
	app := loadApp(t, got)
	repl := caddy.NewReplacer()
	for name, honours := range map[string]bool{"acme": true, "plain": false} {
		rt, err := app.Vendors[name].build(name, repl)
		if err != nil {
			t.Fatal(err)
		}
		h, ok := rt.vendor.(vendors.IdempotencyHonouring)
		if !ok {
			t.Fatalf("%s: no IdempotencyHonouring", name)
		}
		idem := h.Idempotency()
		if idem.Honours(http.MethodPost, "/orders/o_1/pay") != honours {
			t.Errorf("%s honours POST: %v; want %v", name, !honours, honours)
		}
		if honours && idem.Honours(http.MethodPost, "/refunds") {
			t.Errorf("%s honours a path outside its paths", name)
		}
		if honours && (idem.Window != 24*time.Hour || len(idem.ScopeHeaders) != 2 || idem.Mismatch.Type != "idempotency_error") {
			t.Errorf("%s: %+v", name, idem)
		}
	}
}

// A built-in vendor under another name keeps its idempotency (Resend's, or
// none for Twilio) and its recorded path.
func TestRenamedKeepsOptionalBehaviours(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor mail {
			kind resend
			secret_key re_x
		}
		vendor sms {
			kind twilio
			account_sid ACreal1
			auth_token t
			voice_rate +44 0.0150
			voice_rate +1907 unknown
			default_voice_rate 0.25
			reconcile off
		}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `"voice_rates":{"+1907":{"unknown":true},"+44":{"per_minute":0.015}},"default_voice_rate":0.25`) {
		t.Fatalf("voice rates not adapted: %s", got)
	}
	app := loadApp(t, got)
	repl := caddy.NewReplacer()
	mail, err := app.Vendors["mail"].build("mail", repl)
	if err != nil {
		t.Fatal(err)
	}
	if idem := mail.vendor.(vendors.IdempotencyHonouring).Idempotency(); !idem.Honours(http.MethodPost, "/emails") || idem.Window != 24*time.Hour {
		t.Errorf("renamed resend idempotency %+v", idem)
	}
	sms, err := app.Vendors["sms"].build("sms", repl)
	if err != nil {
		t.Fatal(err)
	}
	if idem := sms.vendor.(vendors.IdempotencyHonouring).Idempotency(); idem.Honours(http.MethodPost, "/emails") {
		t.Errorf("renamed twilio honours idempotency: %+v", idem)
	}
	if p := sms.vendor.(vendors.PathRecorder).RecordedPath("/2010-04-01/Accounts/vaultkey123/Messages.json"); p != "/2010-04-01/Accounts/ACreal1/Messages.json" {
		t.Errorf("recorded path %s", p)
	}
	// The voice rates price calls: +44 per minute, +1907 falls to the
	// default.
	for to, want := range map[string]money.Micros{"+442079460000": 15_000, "+19075550100": 250_000} {
		r, body := twilioCall(to)
		est, err := sms.vendor.Estimate(r, body)
		if err != nil || est.Cost != want {
			t.Errorf("call to %s: %+v %v; want %v", to, est, err, want)
		}
	}
}

func twilioCall(to string) (*http.Request, []byte) {
	body := "To=" + strings.ReplaceAll(to, "+", "%2B") + "&TimeLimit=60"
	r, _ := http.NewRequest(http.MethodPost, "/2010-04-01/Accounts/AC1/Calls.json", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r, []byte(body)
}
