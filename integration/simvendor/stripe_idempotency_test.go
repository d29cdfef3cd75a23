package simvendor

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func chargeForm(amount string) []string {
	return []string{"amount", amount, "currency", "usd", "confirm", "true", "payment_method", "pm_card_visa"}
}

func TestStripeIdempotencyReplayIsFree(t *testing.T) {
	e := newEnv(t)
	first := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "k")
	wantStatus(t, first, 200)
	// Same parameters in another order are the same request.
	again := e.stripeReq(t, http.MethodPost, "/v1/payment_intents",
		form("payment_method", "pm_card_visa", "confirm", "true", "currency", "usd", "amount", "1000"), "Idempotency-Key", "k")
	wantStatus(t, again, 200)
	if again.raw != first.raw || again.header.Get("Idempotent-Replayed") != "true" ||
		again.header.Get("Original-Request") != first.header.Get("Request-Id") {
		t.Fatalf("replay differs:\n%s\n%s\n%v", first.raw, again.raw, again.header)
	}
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
}

func TestStripeIdempotencyMismatches(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "k"), 200)

	other := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("2000")...), "Idempotency-Key", "k")
	wantStatus(t, other, 400)
	if other.str("error", "type") != "idempotency_error" || !strings.Contains(other.str("error", "message"), "same parameters") {
		t.Fatalf("different params: %s", other.raw)
	}
	path := e.stripeReq(t, http.MethodPost, "/v1/transfers", form("amount", "1000", "currency", "usd", "destination", "acct_1"), "Idempotency-Key", "k")
	wantStatus(t, path, 400)
	if path.str("error", "type") != "idempotency_error" || !strings.Contains(path.str("error", "message"), "same endpoint") {
		t.Fatalf("different endpoint: %s", path.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
}

// Idempotency-Key on GET is ignored and does not claim the key; keys are
// scoped per Stripe-Account.
func TestStripeIdempotencyScope(t *testing.T) {
	e := newEnv(t)
	cus := e.stripeReq(t, http.MethodPost, "/v1/customers", form("email", "a@example.com"))
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/customers/"+cus.str("id"), nil, "Idempotency-Key", "k"), 200)
	for i := 0; i < 3; i++ {
		r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("100000")...), "Idempotency-Key", "k")
		wantStatus(t, r, 200)
	}
	wantMoved(t, e.sim, VendorStripe, 1_000_000_000) // one $1,000 charge; the two retries replay it
	for _, acct := range []string{"acct_A", "acct_B", "acct_C"} {
		r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("100000")...),
			"Idempotency-Key", "k", "Stripe-Account", acct)
		wantStatus(t, r, 200)
		if r.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("account %s replayed another account's key", acct)
		}
	}
	wantMoved(t, e.sim, VendorStripe, 4_000_000_000)
	// Objects are scoped too.
	pi := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "100", "currency", "usd"), "Stripe-Account", "acct_A")
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/payment_intents/"+pi.str("id"), nil), 404)
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/payment_intents/"+pi.str("id"), nil, "Stripe-Account", "acct_A"), 200)
}

func TestStripeIdempotencyExpiresAfter24Hours(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "k"), 200)
	e.clock.Advance(24*time.Hour - time.Second)
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "k")
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay within 24 h not honoured")
	}
	e.clock.Advance(time.Second)
	r = e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "k")
	wantStatus(t, r, 200)
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Fatal("replay after 24 h")
	}
	wantMoved(t, e.sim, VendorStripe, 20_000_000)
}

// A request that fails validation saves nothing; one that fails while
// executing (a decline) is saved and replayed.
func TestStripeIdempotencySavesOnlyExecutedResults(t *testing.T) {
	e := newEnv(t)
	bad := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("currency", "usd"), "Idempotency-Key", "v")
	wantStatus(t, bad, 400)
	if bad.str("error", "code") != "parameter_missing" {
		t.Fatalf("missing amount: %s", bad.raw)
	}
	good := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("700")...), "Idempotency-Key", "v")
	wantStatus(t, good, 200)

	decl := form("amount", "700", "currency", "usd", "confirm", "true", "payment_method", "pm_card_chargeDeclined")
	d1 := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", decl, "Idempotency-Key", "d")
	wantStatus(t, d1, 402)
	d2 := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", decl, "Idempotency-Key", "d")
	if d2.status != 402 || d2.header.Get("Idempotent-Replayed") != "true" || d2.raw != d1.raw {
		t.Fatalf("decline not replayed: %d %s", d2.status, d2.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 7_000_000)
}

func TestStripeIdempotencyConcurrentIsConflict(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e := newEnv(t, func(c *Config) {
		c.BeforeExecute = func(vendor string, r *http.Request) {
			if r.Header.Get("Idempotency-Key") == "slow" {
				once.Do(func() {
					close(entered)
					<-release
				})
			}
		}
	})
	done := make(chan resp)
	go func() {
		done <- e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "slow")
	}()
	<-entered
	second := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...), "Idempotency-Key", "slow")
	wantStatus(t, second, 409)
	close(release)
	wantStatus(t, <-done, 200)
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
}

func TestStripeAuthAndUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.stripe.URL+"/v1/customers", nil)
	req.SetBasicAuth(testStripeKey, "")
	wantStatus(t, do(t, req), 200)
	req, _ = http.NewRequest(http.MethodGet, e.stripe.URL+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer sk_test_nope_nope_1234")
	r := do(t, req)
	wantStatus(t, r, 401)
	if r.str("error", "type") != "invalid_request_error" || !strings.HasPrefix(r.str("error", "message"), "Invalid API Key provided") ||
		strings.Contains(r.raw, "sk_test_nope_nope_1234") {
		t.Fatalf("wrong key: %s", r.raw)
	}
	r = e.stripeReq(t, http.MethodPost, "/v1/quotes/qt_1/accept", nil)
	wantStatus(t, r, 404)
	if len(e.sim.Problems()) != 1 {
		t.Fatalf("problems: %v", e.sim.Problems())
	}
}
