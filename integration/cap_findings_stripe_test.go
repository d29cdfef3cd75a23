package integration

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/money"
)

// capCase is one attack on the cap (issue 7's findings), run against a
// target whose vendors are sim, which Reset before each case.
type capCase struct {
	name string
	run  func(t *testing.T, c capTarget, sim *simvendor.Sim)
}

// wantWithinCap checks the cap's promise for one key: the money the vendor
// moved stays within the cap, and the ledger counted at least that much.
func wantWithinCap(t *testing.T, c capTarget, sim *simvendor.Sim, k capKey, cap money.Micros) {
	t.Helper()
	moved := money.Micros(sim.Moved(k.vendor))
	if moved > cap {
		t.Errorf("%s moved %s on a %s cap", k.vendor, moved, cap)
	}
	if counted := c.counted(t, k); counted < moved {
		t.Errorf("ledger counted %s; the vendor moved %s", counted, moved)
	}
	if p := sim.Problems(); len(p) > 0 {
		t.Errorf("the simulator could not referee: %v", p)
	}
}

func wantStatus(t *testing.T, what string, got capResponse, status int, bodyHas string) {
	t.Helper()
	if got.status != status || !strings.Contains(got.body, bodyHas) {
		t.Errorf("%s: %s; want %d with %q", what, got, status, bodyHas)
	}
}

var stripeAll = []string{"GET /v1/*", "GET /v1/*/*", "POST /v1/*", "POST /v1/*/*", "POST /v1/*/*/*",
	"DELETE /v1/*/*", "POST /v1/*/*/*/*", "POST /v1/*/*/*/*/*"}

func stripePost(path, body string, hdr ...string) capRequest {
	return capRequest{vendor: "stripe", method: "POST", path: path, header: formHeader(hdr...), body: body}
}

func stripeGet(path string, hdr ...string) capRequest {
	return capRequest{vendor: "stripe", method: "GET", path: path, header: formHeader(hdr...)}
}

// stripeCapCases: findings 1 (Stripe), 2, 3, 4, 5 and 10 of issue 7.
var stripeCapCases = []capCase{
	{"1/replay-after-free-GET", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		wantStatus(t, "GET with an idempotency key", c.do(t, k, stripeGet("/v1/customers/cus_1", "Idempotency-Key", "k")), 404, "")
		for range 5 {
			r := c.do(t, k, stripePost("/v1/payment_intents", form("amount", "100000", "currency", "usd", "confirm", "true",
				"payment_method", "pm_card_visa"), "Idempotency-Key", "k"))
			wantStatus(t, "$1,000 charge reusing the GET's key", r, 429, "keybrake_cap_hit")
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"1/replay-with-other-body-or-account", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("2")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		wantStatus(t, "uncaptured $1 intent", c.do(t, k, stripePost("/v1/payment_intents", form("amount", "100", "currency", "usd"),
			"Idempotency-Key", "k")), 200, "pi_")
		for _, acct := range []string{"acct_A", "acct_B", "acct_C"} {
			r := c.do(t, k, stripePost("/v1/payment_intents", form("amount", "100000", "currency", "usd", "confirm", "true",
				"payment_method", "pm_card_visa"), "Idempotency-Key", "k", "Stripe-Account", acct))
			wantStatus(t, "same key on "+acct, r, 400, "idempotency_error")
		}
		r := c.do(t, k, stripePost("/v1/payment_intents", form("amount", "100000", "currency", "usd", "confirm", "true",
			"payment_method", "pm_card_visa"), "Idempotency-Key", "k"))
		wantStatus(t, "same key, other body", r, 400, "idempotency_error")
		// A true replay is free, even at the cap, and Stripe answers it from
		// its cache.
		for range 3 {
			r = c.do(t, k, stripePost("/v1/payment_intents", form("amount", "100", "currency", "usd"), "Idempotency-Key", "k"))
			if r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("true replay: %s (Idempotent-Replayed %q)", r, r.header.Get("Idempotent-Replayed"))
			}
		}
		if counted := c.counted(t, k); counted != *usdOf("1") {
			t.Errorf("counted %s after one $1 intent and its replays; want $1", counted)
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"2/free-GET-does-not-make-an-intent-seen", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("100")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		pi := outsideIntent(t, sim, 5_000_000, "")
		wantStatus(t, "confirm of an intent made elsewhere", c.do(t, k, stripePost("/v1/payment_intents/"+pi+"/confirm", "")), 429, "keybrake_cap_hit")
		wantStatus(t, "free GET of it", c.do(t, k, stripeGet("/v1/payment_intents/"+pi)), 200, pi)
		wantStatus(t, "confirm again", c.do(t, k, stripePost("/v1/payment_intents/"+pi+"/confirm", "")), 429, "keybrake_cap_hit")
		wantStatus(t, "capture of it", c.do(t, k, stripePost("/v1/payment_intents/"+pi+"/capture", "")), 429, "keybrake_cap_hit")
		// An intent made elsewhere that fits the cap is priced and passes.
		small := outsideIntent(t, sim, 5_000, "")
		wantStatus(t, "confirm of a $50 intent made elsewhere", c.do(t, k, stripePost("/v1/payment_intents/"+small+"/confirm", "")), 200, "succeeded")
		if counted := c.counted(t, k); counted != *usdOf("50") {
			t.Errorf("counted %s; want $50", counted)
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"3/money-moving-endpoints-are-not-free", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		price := sim // prices and customers are free objects
		_ = price
		cus := c.do(t, k, stripePost("/v1/customers", form("email", "a@example.com")))
		wantStatus(t, "customer", cus, 200, "cus_")
		pr := c.do(t, k, stripePost("/v1/prices", form("unit_amount", "100000", "currency", "usd", "recurring[interval]", "month",
			"product_data[name]", "Pro")))
		wantStatus(t, "price", pr, 200, "price_")
		cusID, priceID := jsonField(cus.body, "id"), jsonField(pr.body, "id")
		for _, req := range []capRequest{
			stripePost("/v1/subscriptions", form("customer", cusID, "items[0][price]", priceID, "default_payment_method", "pm_card_visa")),
			stripePost("/v1/customers/"+cusID+"/subscriptions", form("items[0][price]", priceID)),
			stripePost("/v1/subscription_items", form("subscription", "sub_1", "price", priceID)),
			stripePost("/v1/subscription_schedules", form("customer", cusID)),
			stripePost("/v1/invoices", form("customer", cusID, "auto_advance", "true")),
			stripePost("/v1/invoices/in_1/finalize", ""),
			stripePost("/v1/invoices/in_1/pay", ""),
			stripePost("/v1/quotes/qt_1/accept", ""),
			stripePost("/v1/treasury/outbound_payments", form("amount", "100000", "currency", "usd")),
			stripePost("/v1/treasury/outbound_transfers", form("amount", "100000", "currency", "usd")),
			stripePost("/v1/issuing/cards", form("currency", "usd", "type", "virtual")),
			stripePost("/v1/checkout/sessions", form("mode", "payment")),
		} {
			wantStatus(t, req.path, c.do(t, k, req), 403, "keybrake_unknown_cost")
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"4/capture-above-the-authorisation", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("10")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		r := c.do(t, k, stripePost("/v1/payment_intents", form("amount", "1000", "currency", "usd", "confirm", "true",
			"payment_method", "pm_card_visa", "capture_method", "manual",
			"payment_method_options[card][request_overcapture]", "if_available")))
		wantStatus(t, "$10 authorisation", r, 200, "requires_capture")
		pi := jsonField(r.body, "id")
		wantStatus(t, "capture of $12", c.do(t, k, stripePost("/v1/payment_intents/"+pi+"/capture", form("amount_to_capture", "1200"))), 429, "keybrake_cap_hit")
		wantStatus(t, "capture of $10", c.do(t, k, stripePost("/v1/payment_intents/"+pi+"/capture", form("amount_to_capture", "1000"))), 200, "succeeded")
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"4/overcapture-priced-within-the-cap", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("12")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		r := c.do(t, k, stripePost("/v1/payment_intents", form("amount", "1000", "currency", "usd", "confirm", "true",
			"payment_method", "pm_card_visa", "capture_method", "manual",
			"payment_method_options[card][request_overcapture]", "if_available")))
		pi := jsonField(r.body, "id")
		wantStatus(t, "capture of $12 on a $12 key", c.do(t, k, stripePost("/v1/payment_intents/"+pi+"/capture", form("amount_to_capture", "1200"))), 200, "succeeded")
		if counted := c.counted(t, k); counted != *usdOf("12") {
			t.Errorf("counted %s after a $12 overcapture; want $12", counted)
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"5/currency-switch", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1000")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		r := c.do(t, k, stripePost("/v1/payment_intents", form("amount", "100000", "currency", "usd", "payment_method", "pm_card_visa")))
		wantStatus(t, "$1,000 intent", r, 200, "requires_confirmation")
		pi := jsonField(r.body, "id")
		wantStatus(t, "switch to £1,000", c.do(t, k, stripePost("/v1/payment_intents/"+pi, form("currency", "gbp"))), 429, "keybrake_cap_hit")
		wantStatus(t, "raise to $2,000", c.do(t, k, stripePost("/v1/payment_intents/"+pi, form("amount", "200000"))), 429, "keybrake_cap_hit")
		wantStatus(t, "metadata update", c.do(t, k, stripePost("/v1/payment_intents/"+pi, form("metadata[order]", "42"))), 200, pi)
		wantStatus(t, "confirm", c.do(t, k, stripePost("/v1/payment_intents/"+pi+"/confirm", "")), 200, "succeeded")
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"10/vault-key-out-of-place-and-bad-bytes", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("5")
		k := c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: stripeAll})
		wantStatus(t, "vault key in the query", c.do(t, k, stripeGet("/v1/customers?email="+k.secret)), 400, "keybrake_key_in_url")
		wantStatus(t, "vault key in the body", c.do(t, k, stripePost("/v1/customers", form("description", k.secret))), 400, "keybrake_key_in_body")
		wantStatus(t, "vault key in another header", c.do(t, k, stripePost("/v1/customers", form("email", "x@example.com"), "X-Api-Key", k.secret)), 200, "cus_")
		if sim.SawString(k.secret) {
			t.Error("the vault key reached the vendor")
		}
		wantStatus(t, "invalid UTF-8 idempotency key", c.do(t, k, stripePost("/v1/payment_intents", form("amount", "100", "currency", "usd"),
			"Idempotency-Key", "k\xff\xfe")), 400, "keybrake_bad_idempotency_key")
		wantStatus(t, "invalid UTF-8 path", c.do(t, k, stripeGet("/v1/customers/cus_%ff%fe")), 400, "keybrake_bad_path")
		wantWithinCap(t, c, sim, k, *cap)
	}},
}

// outsideIntent creates a PaymentIntent at the simulated Stripe with the
// real secret, as another system would, bypassing Keybrake.
func outsideIntent(t *testing.T, sim *simvendor.Sim, cents int64, account string) string {
	t.Helper()
	h := formHeader("Authorization", "Bearer "+simStripeSecret)
	if account != "" {
		h.Set("Stripe-Account", account)
	}
	r := serve(sim.Stripe(), http.MethodPost, "/v1/payment_intents",
		form("amount", itoa(cents), "currency", "usd", "payment_method", "pm_card_visa"), h)
	if r.status != 200 {
		t.Fatalf("creating an intent outside Keybrake: %s", r)
	}
	return jsonField(r.body, "id")
}
