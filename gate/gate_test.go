package gate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors/stripe"
)

// gtFixture is a gate on the real Stripe vendor and a real embedded ledger.
type gtFixture struct {
	t      *testing.T
	store  ledger.Store
	gate   *Gate
	key    ledger.Key
	secret string
	now    time.Time
}

func newGTFixture(t *testing.T, capUSD string) *gtFixture {
	t.Helper()
	store, err := ledger.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "l.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := ledger.NewKeyCache(store, 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Stripe as the vendor has it, for the lookups that price calls on
	// existing objects.
	objects := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		amount := map[string]string{"/v1/payment_intents/pi_seen": "500", "/v1/payment_intents/pi_never": "5000000"}[r.URL.Path]
		if amount == "" || r.Header.Get("Authorization") != "Bearer sk_test_real" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{"id":"` + strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/") + `","object":"payment_intent","amount":` + amount + `,"currency":"usd"}`))
	}))
	t.Cleanup(objects.Close)
	v, _ := stripe.New(stripe.Config{SecretKey: "sk_test_real", Upstream: objects.URL})
	f := &gtFixture{t: t, store: store, secret: "kbGateTestSecret0000000000000000000000", now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	f.gate, err = New(Config{Vendor: v, Store: store, Keys: keys, Now: func() time.Time { return f.now }, MaxResponseCapture: 200})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := money.ParseUSD(capUSD)
	f.key = ledger.Key{ID: "vkGateTest000000000000", Hash: ledger.HashSecret(f.secret), Vendor: "stripe", TotalCap: &c,
		AllowedEndpoints: []string{"POST /v1/payment_intents"}, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour), RunLabel: "gate-test"}
	if err := store.CreateKey(context.Background(), f.key); err != nil {
		t.Fatal(err)
	}
	return f
}

// charge sends one $5 PaymentIntent create through the gate to next.
func (f *gtFixture) charge(next Next, idem string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader("amount=500&currency=usd"))
	r.Header.Set("Authorization", "Bearer "+f.secret)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if idem != "" {
		r.Header.Set("Idempotency-Key", idem)
	}
	w := httptest.NewRecorder()
	if err := f.gate.ServeHTTP(w, r, next); err != nil {
		f.t.Fatalf("ServeHTTP returned %v", err)
	}
	return w
}

func (f *gtFixture) usage() ledger.KeyUsage {
	u, err := f.store.GetKey(context.Background(), f.key.ID, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *gtFixture) lastCall() ledger.Call {
	calls, _, err := f.store.Audit(context.Background(), ledger.AuditFilter{KeyID: f.key.ID, Limit: 1000})
	if err != nil || len(calls) == 0 {
		f.t.Fatalf("audit: %v (%d calls)", err, len(calls))
	}
	return calls[len(calls)-1]
}

func answer(status int, body string) Next {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Authorization") != "Bearer sk_test_real" {
			return errors.New("the real secret did not reach next")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return nil
	}
}

func TestGateSettlesReleasesAndKeepsUnknown(t *testing.T) {
	f := newGTFixture(t, "100")
	w := f.charge(answer(200, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`), "")
	if w.Code != 200 || w.Header().Get(HeaderCallID) == "" || w.Header().Get(HeaderRemaining) != "95.000000" {
		t.Fatalf("2xx: %d %v", w.Code, w.Header())
	}
	if c := f.lastCall(); c.CostState != ledger.CostSettled || c.Cost != 5*money.PerDollar || c.VendorTxnID != "pi_1" {
		t.Fatalf("settled call = %+v", c)
	}
	// A decline moved no money.
	f.charge(answer(402, `{"error":{"type":"card_error","code":"card_declined","message":"declined"}}`), "")
	if c := f.lastCall(); c.CostState != ledger.CostReleased || c.Cost != 0 || c.StatusCode != 402 {
		t.Fatalf("declined call = %+v", c)
	}
	// A 5xx is ambiguous: the reservation is kept.
	f.charge(answer(500, `{}`), "")
	if c := f.lastCall(); c.CostState != ledger.CostUnknown {
		t.Fatalf("5xx call = %+v", c)
	}
	u := f.usage()
	if u.Spent != 5*money.PerDollar || u.Reserved != 5*money.PerDollar {
		t.Fatalf("usage = spent %s reserved %s; want 5 and 5", u.Spent, u.Reserved)
	}
}

func TestGateUpstreamFailureAnswers502AndKeepsReservation(t *testing.T) {
	f := newGTFixture(t, "100")
	w := f.charge(func(http.ResponseWriter, *http.Request) error { return errors.New("dial tcp: connection refused") }, "")
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "keybrake_upstream_error") {
		t.Fatalf("upstream failure: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Stripe-Should-Retry") == "false" {
		t.Fatal("an ambiguous failure told the SDK never to retry")
	}
	c := f.lastCall()
	if c.CostState != ledger.CostUnknown || c.Outcome != ledger.OutcomeUpstreamError {
		t.Fatalf("call = %+v", c)
	}
	if u := f.usage(); u.Reserved != 5*money.PerDollar {
		t.Fatalf("reserved = %s; want the $5 kept", u.Reserved)
	}
}

func TestGateLargeResponseFallsBackToEstimate(t *testing.T) {
	f := newGTFixture(t, "100")
	big := `{"id":"pi_big","amount":500,"currency":"usd","metadata":{"pad":"` + strings.Repeat("x", 500) + `"}}`
	w := f.charge(answer(200, big), "")
	if w.Body.String() != big {
		t.Fatal("the client did not get the whole body")
	}
	if c := f.lastCall(); c.CostState != ledger.CostSettled || c.Cost != 5*money.PerDollar {
		t.Fatalf("call = %+v", c)
	}
}

func TestGateReplayCostsNothing(t *testing.T) {
	f := newGTFixture(t, "5")
	ok := answer(200, `{"id":"pi_r","amount":500,"currency":"usd"}`)
	f.charge(ok, "idem-1")
	if w := f.charge(ok, "idem-1"); w.Code != 200 {
		t.Fatalf("replay at the cap: %d %s", w.Code, w.Body)
	}
	if w := f.charge(ok, "idem-2"); w.Code != http.StatusTooManyRequests || w.Header().Get(HeaderCapHit) != "true" {
		t.Fatalf("new charge over the cap: %d %v", w.Code, w.Header())
	}
	if u := f.usage(); u.Spent != 5*money.PerDollar || u.Reserved != 0 || u.Calls != 2 || u.CapHits != 1 {
		t.Fatalf("usage = %+v", u)
	}
}

func TestGateFailsClosedWhenTheLedgerIsGone(t *testing.T) {
	f := newGTFixture(t, "100")
	called := false
	f.store.Close()
	w := f.charge(func(http.ResponseWriter, *http.Request) error { called = true; return nil }, "")
	if w.Code != http.StatusServiceUnavailable || called {
		t.Fatalf("ledger gone: %d, forwarded=%v", w.Code, called)
	}
}

// TestGateConfirmOfASeenIntentCostsNothingMore: a PaymentIntent is counted
// when created through Keybrake; confirming it later reserves nothing more,
// while confirming one the key never paid for is priced at its amount as
// Stripe has it, here above the cap. A free GET of it does not change that.
func TestGateConfirmOfASeenIntentCostsNothingMore(t *testing.T) {
	f := newGTFixture(t, "5")
	f.key.AllowedEndpoints = append(f.key.AllowedEndpoints, "POST /v1/payment_intents/*/confirm")
	f.key.ID, f.secret = "vkGateTest000000000001", "kbGateTestSecret0000000000000000000001"
	f.key.Hash = ledger.HashSecret(f.secret)
	if err := f.store.CreateKey(context.Background(), f.key); err != nil {
		t.Fatal(err)
	}
	f.charge(answer(200, `{"id":"pi_seen","amount":500,"currency":"usd"}`), "")
	confirm := func(id string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/v1/payment_intents/"+id+"/confirm", nil)
		r.Header.Set("Authorization", "Bearer "+f.secret)
		w := httptest.NewRecorder()
		_ = f.gate.ServeHTTP(w, r, answer(200, `{"id":"`+id+`","amount":500,"currency":"usd","status":"succeeded"}`))
		return w
	}
	if w := confirm("pi_seen"); w.Code != 200 {
		t.Fatalf("confirm of a counted intent at the cap: %d %s", w.Code, w.Body)
	}
	if w := confirm("pi_never"); w.Code != http.StatusTooManyRequests || w.Header().Get(HeaderCapHit) != "true" {
		t.Fatalf("confirm of an intent the key never paid for: %d %s", w.Code, w.Body)
	}
	if u := f.usage(); u.Spent != 5*money.PerDollar || u.Calls != 2 || u.CapHits != 1 {
		t.Fatalf("usage = spent %s calls %d cap hits %d; want $5 over 2 calls, 1 cap hit", u.Spent, u.Calls, u.CapHits)
	}
}

// TestGateClientGoneKeepsTheReservation: Caddy's reverse_proxy answers 499
// itself when the client cancels; the vendor may have charged, so the
// reservation is kept as unknown, never released.
func TestGateClientGoneKeepsTheReservation(t *testing.T) {
	f := newGTFixture(t, "100")
	f.charge(answer(499, ""), "")
	c := f.lastCall()
	if c.CostState != ledger.CostUnknown || c.Outcome != ledger.OutcomeClientGone {
		t.Fatalf("call = %+v", c)
	}
	if u := f.usage(); u.Reserved != 5*money.PerDollar {
		t.Fatalf("reserved = %s; want $5 kept", u.Reserved)
	}
}

// TestGateAbortedHandlerStillSettles: reverse_proxy panics with
// http.ErrAbortHandler when the client leaves mid-response. The call is
// settled all the same (the vendor answered 200: at the estimate, since the
// body was cut), and the panic goes on up to Caddy.
func TestGateAbortedHandlerStillSettles(t *testing.T) {
	f := newGTFixture(t, "100")
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("recovered %v; want http.ErrAbortHandler passed on", p)
			}
		}()
		f.charge(func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"id":"pi_cut","amo`))
			panic(http.ErrAbortHandler)
		}, "")
	}()
	c := f.lastCall()
	if c.CostState != ledger.CostSettled || c.Cost != 5*money.PerDollar || c.StatusCode != 200 {
		t.Fatalf("call = %+v", c)
	}
	// Aborted before any answer: unknown, reservation kept.
	func() {
		defer func() { _ = recover() }()
		f.charge(func(http.ResponseWriter, *http.Request) error { panic(http.ErrAbortHandler) }, "")
	}()
	if c := f.lastCall(); c.CostState != ledger.CostUnknown || c.Outcome != ledger.OutcomeClientGone {
		t.Fatalf("call aborted before an answer = %+v", c)
	}
}

// TestGateClientGoneBeforeForwarding: a client that has already left by the
// time its reservation is made gets nothing forwarded, and the reservation
// goes back.
func TestGateClientGoneBeforeForwarding(t *testing.T) {
	f := newGTFixture(t, "100")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader("amount=500&currency=usd")).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+f.secret)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	forwarded := false
	// The key lookup is cached by an earlier call so the cancelled context
	// reaches the reservation.
	f.charge(answer(200, `{"id":"pi_0","amount":500,"currency":"usd"}`), "")
	f.gate.cfg.Keys.Wait()
	_ = f.gate.ServeHTTP(httptest.NewRecorder(), r, func(http.ResponseWriter, *http.Request) error { forwarded = true; return nil })
	if forwarded {
		t.Fatal("a call whose client had left was forwarded")
	}
	if u := f.usage(); u.Reserved != 0 || u.Spent != 5*money.PerDollar {
		t.Fatalf("usage = spent %s reserved %s; want 5 and 0", u.Spent, u.Reserved)
	}
	if c := f.lastCall(); c.Outcome != ledger.OutcomeClientGone || c.CostState != ledger.CostReleased {
		t.Fatalf("call = %+v; want released, client_gone", c)
	}
}

// TestGateTokenBudget: a key with room of its own, issued by a token whose
// budget is spent, is refused 429 in Stripe's format with
// X-Keybrake-Budget: token and code keybrake_budget_hit, and the audit
// records a budget_hit, not a cap_hit.
func TestGateTokenBudget(t *testing.T) {
	f := newGTFixture(t, "100")
	ctx := context.Background()
	budget := money.Micros(12 * money.PerDollar)
	if err := f.store.CreateToken(ctx, ledger.Token{ID: "tkGate", Hash: ledger.HashSecret("ktGate"), Name: "g",
		Role: ledger.RoleIssuer, TotalCap: &budget, CreatedAt: f.now}); err != nil {
		t.Fatal(err)
	}
	f.key.ID, f.key.Hash, f.key.TokenID = "vkGateBudget", ledger.HashSecret(f.secret+"b"), "tkGate"
	f.secret += "b"
	if err := f.store.CreateKey(ctx, f.key); err != nil {
		t.Fatal(err)
	}
	ok := answer(200, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`)
	for i := range 2 {
		if w := f.charge(ok, ""); w.Code != 200 {
			t.Fatalf("charge %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := f.charge(ok, "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get(HeaderCapHit) != "true" || w.Header().Get(HeaderBudget) != "token" ||
		w.Header().Get("Stripe-Should-Retry") != "false" {
		t.Fatalf("at the budget: %d %v", w.Code, w.Header())
	}
	if !strings.Contains(w.Body.String(), `"code":"keybrake_budget_hit"`) || !strings.Contains(w.Body.String(), `"type":"invalid_request_error"`) {
		t.Fatalf("body %s", w.Body)
	}
	if c := f.lastCall(); c.Outcome != ledger.OutcomeBudgetHit || c.StatusCode != 429 || c.Reserved != 0 {
		t.Fatalf("audited call = %+v", c)
	}
	if u := f.usage(); u.Spent != 10*money.PerDollar || u.CapHits != 1 {
		t.Fatalf("key usage = %+v", u)
	}
}

// TestGateSlowsKeyGuessing: an address that keeps presenting unknown vault
// keys has them refused 429 past the burst until the limiter forgives a
// failure; a valid key from the same address goes through all along (one
// client behind a NAT cannot lock out the others).
func TestGateSlowsKeyGuessing(t *testing.T) {
	f := newGTFixture(t, "100")
	forwarded := 0
	next := func(w http.ResponseWriter, r *http.Request) error {
		forwarded++
		return answer(200, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`)(w, r)
	}
	good := f.secret
	guess := func(i int) *httptest.ResponseRecorder {
		f.secret = fmt.Sprintf("kbGuess%030d", i)
		defer func() { f.secret = good }()
		return f.charge(next, "")
	}
	for i := range DefaultAuthBurst + 1 {
		if w := guess(i); w.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	for i := range 5 {
		w := guess(100 + i)
		if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "keybrake_too_many_failed_attempts") ||
			w.Header().Get("Stripe-Should-Retry") != "false" {
			t.Fatalf("throttled guess: %d %v %s", w.Code, w.Header(), w.Body)
		}
		// The valid key, from the same address, between the guesses.
		if w := f.charge(next, ""); w.Code != 200 || forwarded != i+1 {
			t.Fatalf("valid key from a throttled address: %d, %d forwarded: %s", w.Code, forwarded, w.Body)
		}
	}
	f.now = f.now.Add(DefaultAuthRefill)
	if w := guess(200); w.Code != http.StatusUnauthorized {
		t.Fatalf("a guess after a refill: %d; want 401", w.Code)
	}
	if w := guess(201); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the next guess: %d; want 429", w.Code)
	}
}
