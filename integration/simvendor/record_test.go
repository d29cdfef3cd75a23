package simvendor

import (
	"net/http"
	"strings"
	"testing"
)

func TestSawStringSearchesEverything(t *testing.T) {
	e := newEnv(t)
	if e.sim.SawString("kbvault") {
		t.Fatal("nothing received yet")
	}
	// As a Twilio Basic password (base64 on the wire).
	e.twilioReq(t, http.MethodGet, "/2010-04-01/Accounts/"+testTwilioSID+".json", nil, "ACx", "kbvaultpassword")
	if !e.sim.SawString("kbvaultpassword") {
		t.Fatal("Basic password not found")
	}
	// In a query string, percent-encoded.
	e.stripeReq(t, http.MethodGet, "/v1/customers", form("q", "kb vault/query"))
	if !e.sim.SawString("kb vault/query") {
		t.Fatal("query not found")
	}
	// In another header, and in a form body.
	e.stripeReq(t, http.MethodPost, "/v1/customers", form("description", "kbvault-in-body"), "X-Other", "kbvault-in-header")
	for _, s := range []string{"kbvault-in-body", "kbvault-in-header", "X-Other"} {
		if !e.sim.SawString(s) {
			t.Fatalf("%q not found", s)
		}
	}
	// In a JSON body.
	e.resendReq(t, http.MethodPost, "/emails", `{"from":"kbvault@json.test"}`)
	if !e.sim.SawString("kbvault@json.test") || e.sim.SawString("never-sent") {
		t.Fatal("JSON body search")
	}
	if e.sim.Requests(VendorStripe) != 2 || e.sim.Requests(VendorTwilio) != 1 || e.sim.Requests("") != 4 {
		t.Fatalf("requests: %d %d %d", e.sim.Requests(VendorStripe), e.sim.Requests(VendorTwilio), e.sim.Requests(""))
	}
	got := e.sim.Received()
	if len(got) != 4 || got[2].Header.Get("X-Other") != "kbvault-in-header" || !strings.Contains(string(got[2].Body), "kbvault-in-body") {
		t.Fatalf("received: %+v", got)
	}
}

func TestResetForgetsEverything(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "k"), 200)
	e.stripeReq(t, http.MethodPost, "/v1/quotes", nil)
	e.sim.Reset()
	if e.sim.Moved("") != 0 || len(e.sim.Events()) != 0 || e.sim.Requests("") != 0 || len(e.sim.Problems()) != 0 {
		t.Fatal("Reset kept state")
	}
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "k")
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("Reset kept idempotency keys")
	}
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
}

func TestMoney(t *testing.T) {
	s := New(Config{Rates: map[string]int64{"gbp": 1_270_000, "xyz": 333_333}})
	for _, c := range []struct {
		amount   int64
		currency string
		want     int64
	}{
		{1, "usd", 10_000},
		{99_999_999, "usd", 999_999_990_000},
		{100, "GBP", 1_270_000},
		{1, "xyz", 3_334}, // 3333.33 rounds up
	} {
		got, err := s.toMicros(c.amount, c.currency)
		if err != nil || got != c.want {
			t.Errorf("toMicros(%d, %s) = %d, %v; want %d", c.amount, c.currency, got, err, c.want)
		}
	}
	if _, err := s.toMicros(1, "eur"); err == nil {
		t.Error("no rate must be an error")
	}
	for micros, want := range map[int64]string{8_300: "-0.00830", 16_600: "-0.01660", 1_234_567: "-1.234567", 3_360_000: "-3.36000"} {
		if got := twilioPrice(micros); got != want {
			t.Errorf("twilioPrice(%d) = %q, want %q", micros, got, want)
		}
	}
}
