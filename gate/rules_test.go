package gate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// withRules gives the fixture a new key with rules and returns a charge of
// customer (none when "") through the gate.
func (f *gtFixture) withRules(t *testing.T, r string) func(customer string, next Next) *httptest.ResponseRecorder {
	t.Helper()
	rs, err := rules.Parse("rules", json.RawMessage(r))
	if err != nil {
		t.Fatal(err)
	}
	f.key.ID, f.secret = "vkGateTestRules0000001", "kbGateTestSecretRules00000000000000001"
	f.key.Hash, f.key.Rules = ledger.HashSecret(f.secret), rs
	if err := f.store.CreateKey(context.Background(), f.key); err != nil {
		t.Fatal(err)
	}
	return func(customer string, next Next) *httptest.ResponseRecorder {
		body := "amount=500&currency=usd"
		if customer != "" {
			body += "&customer=" + customer
		}
		req := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+f.secret)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		if err := f.gate.ServeHTTP(w, req, next); err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
		return w
	}
}

// TestGateRules: the stateless rules refuse before the ledger, the
// stateful ones in it; each refusal answers in Stripe's format with
// X-Keybrake-Rule, is recorded with its rule, and only the rate refusal
// tells the SDK it may retry, after Retry-After.
func TestGateRules(t *testing.T) {
	f := newGTFixture(t, "100")
	charge := f.withRules(t, `{"max_call_usd": 5, "allow": {"customer": ["cus_A", "cus_B", "cus_C"]}, "once_per": "customer", "rate": "2/1m"}`)
	forwarded := 0
	ok := func(w http.ResponseWriter, r *http.Request) error {
		forwarded++
		return answer(200, `{"id":"pi_x","object":"payment_intent","amount":500,"currency":"usd"}`)(w, r)
	}
	want := func(w *httptest.ResponseRecorder, status int, code, rule, retry string) {
		t.Helper()
		if w.Code != status || w.Header().Get(HeaderRule) != rule || !strings.Contains(w.Body.String(), `"code":"`+code+`"`) ||
			w.Header().Get("Stripe-Should-Retry") != retry {
			t.Fatalf("got %d %v %s; want %d %s rule %q, Stripe-Should-Retry %q", w.Code, w.Header(), w.Body, status, code, rule, retry)
		}
		if c := f.lastCall(); c.Outcome != ledger.OutcomeRuleDenied || c.Rule != rule || c.StatusCode != status {
			t.Fatalf("recorded %+v", c)
		}
	}
	if w := charge("cus_A", ok); w.Code != 200 {
		t.Fatalf("allowed charge: %d %s", w.Code, w.Body)
	}
	want(charge("cus_Z", ok), http.StatusForbidden, "keybrake_rule_denied", rules.RuleAllow, "false")
	want(charge("", ok), http.StatusForbidden, "keybrake_rule_denied", rules.RuleAllow, "false")
	want(charge("cus_A", ok), http.StatusForbidden, "keybrake_rule_denied", rules.RuleOncePer, "false")
	if w := charge("cus_B", ok); w.Code != 200 {
		t.Fatalf("second customer: %d %s", w.Code, w.Body)
	}
	w := charge("cus_C", ok)
	want(w, http.StatusTooManyRequests, "keybrake_rate_limited", rules.RuleRate, "true")
	if w.Header().Get("Retry-After") != "60" {
		t.Fatalf("Retry-After %q; want 60", w.Header().Get("Retry-After"))
	}
	f.now = f.now.Add(time.Minute)
	if w := charge("cus_C", ok); w.Code != 200 {
		t.Fatalf("after the window: %d %s", w.Code, w.Body)
	}
	if forwarded != 3 {
		t.Fatalf("forwarded %d calls; want 3", forwarded)
	}
	// A free call is never refused by a rule.
	get := httptest.NewRequest("GET", "/v1/payment_intents", nil)
	get.Header.Set("Authorization", "Bearer "+f.secret)
	f.key.AllowedEndpoints = nil
	rec := httptest.NewRecorder()
	_ = f.gate.ServeHTTP(rec, get, ok)
	if rec.Header().Get(HeaderRule) != "" {
		t.Fatalf("a read was refused by a rule: %d %v", rec.Code, rec.Header())
	}
}

// TestGateMaxCallUSD: a call reserving more than max_call_usd is refused.
func TestGateMaxCallUSD(t *testing.T) {
	f := newGTFixture(t, "100")
	charge := f.withRules(t, `{"max_call_usd": 4.99, "max_calls": 1}`)
	w := charge("", answer(200, `{}`))
	if w.Code != http.StatusForbidden || w.Header().Get(HeaderRule) != rules.RuleMaxCallUSD {
		t.Fatalf("over max_call_usd: %d %v %s", w.Code, w.Header(), w.Body)
	}
}
