package stripe

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

const vaultKey = "kbAAAAbbbbCCCCddddEEEEffff0123456789"

func newVendor(t *testing.T) *Vendor {
	t.Helper()
	v, err := New(Config{SecretKey: "sk_test_real", Rates: money.Rates{"jpy": 6_700}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCredential(t *testing.T) {
	v := newVendor(t)
	r := httptest.NewRequest("GET", "/v1/customers", nil)
	r.Header.Set("Authorization", "Bearer "+vaultKey)
	if got, ok := v.Credential(r); !ok || got != vaultKey {
		t.Fatalf("bearer: %q %v", got, ok)
	}
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(vaultKey+":")))
	if got, ok := v.Credential(r); !ok || got != vaultKey {
		t.Fatalf("basic: %q %v", got, ok)
	}
	for _, bad := range []string{"", "Bearer ", "Bearer sk_test_with_underscores_123", "Basic !!!", "Token " + vaultKey, "Bearer short"} {
		r.Header.Set("Authorization", bad)
		if _, ok := v.Credential(r); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestAuthorizeSwapsSecret(t *testing.T) {
	v := newVendor(t)
	r := httptest.NewRequest("POST", "/v1/payment_intents", nil)
	r.Header.Set("Authorization", "Bearer "+vaultKey)
	if err := v.Authorize(r); err != nil {
		t.Fatal(err)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer sk_test_real" {
		t.Fatalf("Authorization = %q", got)
	}
}

func estimate(t *testing.T, v *Vendor, method, path, body string) (vendors.Estimate, error) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return v.Estimate(r, []byte(body))
}

func TestEstimate(t *testing.T) {
	v := newVendor(t)
	cases := []struct {
		method, path, body string
		cost               money.Micros
		known              bool
	}{
		{"POST", "/v1/payment_intents", "amount=500&currency=usd", 5_000_000, true},
		{"POST", "/v1/payment_intents", "amount=1000&currency=jpy&confirm=true", 6_700_000, true},
		{"POST", "/v1/charges", "amount=1999&currency=USD", 19_990_000, true},
		{"POST", "/v1/transfers", "amount=100&currency=usd&destination=acct_1", 1_000_000, true},
		{"POST", "/v1/payouts", "amount=2500&currency=usd", 25_000_000, true},
		{"POST", "/v1/payment_intents/pi_123", "description=x", 0, true},
		{"POST", "/v1/payment_intents/pi_123/cancel", "", 0, true},
		{"POST", "/v1/customers", "email=a@b.c", 0, true},
		{"DELETE", "/v1/customers/cus_1", "", 0, true},
		{"GET", "/v1/customers/cus_1", "", 0, true},
		{"GET", "/v1/payment_intents/search", "", 0, true},
		// Money-moving endpoints with no price rule: unknown, so denied by
		// default (issue 7, finding 3).
		{"POST", "/v1/invoices/in_1/pay", "", 0, false},
		{"POST", "/v1/subscriptions", "customer=cus_1&items[0][price]=price_1", 0, false},
		{"POST", "/v1/subscriptions/sub_1", "items[0][quantity]=50", 0, false},
		{"DELETE", "/v1/subscriptions/sub_1", "invoice_now=true", 0, false},
		{"POST", "/v1/subscription_items", "subscription=sub_1&price=price_1", 0, false},
		{"POST", "/v1/subscription_schedules", "customer=cus_1", 0, false},
		{"POST", "/v1/invoices", "customer=cus_1", 0, false},
		{"POST", "/v1/invoices/in_1/finalize", "", 0, false},
		{"POST", "/v1/quotes/qt_1/accept", "", 0, false},
		{"POST", "/v1/treasury/outbound_payments", "amount=100&currency=usd", 0, false},
		{"POST", "/v1/treasury/outbound_transfers", "amount=100&currency=usd", 0, false},
		{"POST", "/v1/customers/cus_1/subscriptions", "", 0, false},
		{"POST", "/v1/customers/cus_1/subscriptions/sub_1", "", 0, false},
		{"POST", "/v1/issuing/cards", "currency=usd&type=virtual", 0, false},
		{"POST", "/v1/checkout/sessions", "mode=payment", 0, false},
		{"POST", "/v1/payment_links", "", 0, false},
		{"POST", "/v1/customers/cus_1/balance_transactions", "amount=100&currency=usd", 0, false},
		{"POST", "/v2/core/accounts", "{}", 0, false},
	}
	for _, c := range cases {
		got, err := estimate(t, v, c.method, c.path, c.body)
		if err != nil {
			t.Errorf("%s %s %s: %v", c.method, c.path, c.body, err)
			continue
		}
		if got.Cost != c.cost || got.Known != c.known || got.Object != "" {
			t.Errorf("%s %s %s = %+v; want cost %d known %v", c.method, c.path, c.body, got, c.cost, c.known)
		}
	}
}

func TestEstimateRefusesBadInput(t *testing.T) {
	v := newVendor(t)
	for _, body := range []string{
		"currency=usd",                      // missing amount
		"amount=500",                        // missing currency
		"amount=5.00&currency=usd",          // not an integer
		"amount=-5&currency=usd",            // negative
		"amount=500&currency=gbp",           // no rate
		"amount=1&amount=5000&currency=usd", // smuggled second amount
		"amount=%zz",
	} {
		_, err := estimate(t, v, "POST", "/v1/payment_intents", body)
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != http.StatusBadRequest {
			t.Errorf("body %q: err = %v; want a 400", body, err)
		}
	}
	// An amount in the query string as well as the body is a duplicate too.
	r := httptest.NewRequest("POST", "/v1/payment_intents?amount=1", strings.NewReader("amount=5000&currency=usd"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := v.Estimate(r, []byte("amount=5000&currency=usd")); err == nil {
		t.Error("query+body amount accepted")
	}
	// One reading (issue 17): a POST takes no query string, and a JSON body
	// sent as a form is not read as one.
	for target, body := range map[string]string{
		"/v1/payment_intents?currency=usd": "amount=5000",
		"/v1/payment_intents":              `{"amount":5000,"currency":"usd"}`,
	} {
		r := httptest.NewRequest("POST", target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		_, err := v.Estimate(r, []byte(body))
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Code != vendors.CodeAmbiguousRequest {
			t.Errorf("%s %s: err = %v; want %s", target, body, err, vendors.CodeAmbiguousRequest)
		}
	}
}

func TestSettle(t *testing.T) {
	v := newVendor(t)
	r := httptest.NewRequest("POST", "/v1/payment_intents", nil)
	est := vendors.Estimate{Cost: 5_000_000, Known: true}
	res := v.Settle(r, 200, nil, []byte(`{"id":"pi_abc","object":"payment_intent","amount":500,"currency":"usd","status":"succeeded"}`), est)
	if res.Decision != vendors.DecisionSettle || res.Cost != 5_000_000 || res.TxnID != "pi_abc" || *res.Amount != 500 || res.Currency != "usd" {
		t.Fatalf("settle = %+v", res)
	}
	if res := v.Settle(r, 402, nil, []byte(`{"error":{"type":"card_error"}}`), est); res.Decision != vendors.DecisionRelease || res.Cost != 0 {
		t.Fatalf("402 = %+v", res)
	}
	if res := v.Settle(r, 500, nil, nil, est); res.Decision != vendors.DecisionUnknown {
		t.Fatalf("500 = %+v", res)
	}
	if res := v.Settle(r, 200, nil, []byte(`not json`), est); res.Decision != vendors.DecisionSettle || res.Cost != est.Cost {
		t.Fatalf("unreadable 2xx = %+v", res)
	}
}

func TestWriteError(t *testing.T) {
	v := newVendor(t)
	w := httptest.NewRecorder()
	v.WriteError(w, &vendors.Error{Status: 429, Code: "keybrake_cap_hit", Message: "cap", CapHit: true})
	if w.Code != 429 || w.Header().Get("Stripe-Should-Retry") != "false" || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v code %d", w.Header(), w.Code)
	}
	var body struct {
		Error struct{ Type, Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "keybrake_cap_hit" || body.Error.Type != "invalid_request_error" || body.Error.Message != "cap" {
		t.Fatalf("body %s", w.Body)
	}
}
