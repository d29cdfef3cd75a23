package stripe

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// objectServer answers lookups of PaymentIntents and Charges as Stripe
// does, and records what it was asked.
type objectServer struct {
	mu      sync.Mutex
	objects map[string]string // path → JSON
	seen    []*http.Request
}

func (s *objectServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, r.Clone(r.Context()))
	body, ok := s.objects[r.URL.Path]
	if !ok || r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such object"}}`))
		return
	}
	_, _ = w.Write([]byte(body))
}

func newObjectVendor(t *testing.T) (*Vendor, *objectServer) {
	t.Helper()
	srv := &objectServer{objects: map[string]string{
		"/v1/payment_intents/pi_usd":  `{"id":"pi_usd","object":"payment_intent","amount":100000,"currency":"usd","status":"requires_confirmation","amount_capturable":0,"amount_received":0}`,
		"/v1/payment_intents/pi_auth": `{"id":"pi_auth","object":"payment_intent","amount":1000,"currency":"usd","status":"requires_capture","amount_capturable":1000,"amount_received":0}`,
		"/v1/payment_intents/pi_big":  `{"id":"pi_big","object":"payment_intent","amount":5000000,"currency":"usd","status":"requires_confirmation"}`,
		"/v1/charges/ch_1":            `{"id":"ch_1","object":"charge","amount":2000,"amount_captured":2000,"amount_refunded":500,"currency":"gbp","captured":true}`,
		"/v1/charges/ch_auth":         `{"id":"ch_auth","object":"charge","amount":3000,"amount_captured":0,"currency":"usd","captured":false}`,
	}}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	v, err := New(Config{SecretKey: "sk_test_real", Rates: money.Rates{"gbp": 1_270_000}, Upstream: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	return v, srv
}

// TestEstimateOnObjects: calls on an object that exists already are priced
// from the object as Stripe has it (issue 7, findings 2, 4 and 5); the gate
// then subtracts what the key counted for the object.
func TestEstimateOnObjects(t *testing.T) {
	v, srv := newObjectVendor(t)
	cases := []struct {
		name, path, body string
		object           string
		exposure         money.Micros
	}{
		{"confirm: the intent's amount", "/v1/payment_intents/pi_big/confirm", "", "pi_big", 50_000_000_000},
		{"currency switch: the amount in the new currency", "/v1/payment_intents/pi_usd", "currency=gbp", "pi_usd", 1_270_000_000},
		{"amount raised by an update", "/v1/payment_intents/pi_usd", "amount=200000", "pi_usd", 2_000_000_000},
		{"capture above the authorisation", "/v1/payment_intents/pi_auth/capture", "amount_to_capture=1200", "pi_auth", 12_000_000},
		{"capture of all that is capturable", "/v1/payment_intents/pi_auth/capture", "", "pi_auth", 10_000_000},
		{"partial capture counts the authorisation", "/v1/payment_intents/pi_auth/capture", "amount_to_capture=100", "pi_auth", 10_000_000},
		{"increment to a new total", "/v1/payment_intents/pi_auth/increment_authorization", "amount=5000", "pi_auth", 50_000_000},
		{"charge capture", "/v1/charges/ch_auth/capture", "", "ch_auth", 30_000_000},
		{"a currency on a confirm is not Stripe's: the intent's holds", "/v1/payment_intents/pi_usd/confirm", "currency=jpy", "pi_usd", 1_000_000_000},
	}
	for _, c := range cases {
		got, err := estimate(t, v, "POST", c.path, c.body)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !got.Known || got.Object != c.object || got.Exposure != c.exposure {
			t.Errorf("%s: %+v; want object %s exposure %s", c.name, got, c.object, c.exposure)
		}
	}
	for _, r := range srv.seen {
		if r.Header.Get("Authorization") != "Bearer sk_test_real" {
			t.Fatalf("lookup sent Authorization %q", r.Header.Get("Authorization"))
		}
	}
	// An object Stripe does not have: unknown cost, refused by default.
	got, err := estimate(t, v, "POST", "/v1/payment_intents/pi_nope/confirm", "")
	if err != nil || got.Known {
		t.Fatalf("unknown object: %+v %v; want unknown cost", got, err)
	}
	// The lookup is made as the account the request names.
	r := httptest.NewRequest("POST", "/v1/payment_intents/pi_usd/confirm", nil)
	r.Header.Set("Stripe-Account", "acct_123")
	if _, err := v.Estimate(r, nil); err != nil {
		t.Fatal(err)
	}
	if last := srv.seen[len(srv.seen)-1]; last.Header.Get("Stripe-Account") != "acct_123" {
		t.Fatalf("lookup Stripe-Account = %q", last.Header.Get("Stripe-Account"))
	}
}

// TestEstimateRefunds: a refund is priced at its amount in its charge's
// currency; without an amount, at what remains refundable.
func TestEstimateRefunds(t *testing.T) {
	v, _ := newObjectVendor(t)
	cases := []struct {
		path, body string
		cost       money.Micros
		known      bool
	}{
		{"/v1/refunds", "charge=ch_1&amount=100", 1_270_000, true},
		{"/v1/refunds", "charge=ch_1&amount=100&currency=usd", 1_270_000, true}, // the charge's currency wins
		{"/v1/refunds", "charge=ch_1", 19_050_000, true},                        // 1500 pence left
		{"/v1/charges/ch_1/refunds", "", 19_050_000, true},
		{"/v1/refunds", "payment_intent=pi_auth", 0, true},
		{"/v1/refunds", "amount=100&currency=usd", 1_000_000, true}, // no charge: a cash balance refund
		{"/v1/refunds", "amount=100", 0, false},
		{"/v1/refunds", "charge=ch_nope", 0, false},
	}
	for _, c := range cases {
		got, err := estimate(t, v, "POST", c.path, c.body)
		if err != nil || got.Cost != c.cost || got.Known != c.known {
			t.Errorf("%s %s = %+v, %v; want cost %s known %v", c.path, c.body, got, err, c.cost, c.known)
		}
	}
}

// TestSettleOnObjects: a call on an object settles at what the object has
// moved less what the key counted before it.
func TestSettleOnObjects(t *testing.T) {
	v, _ := newObjectVendor(t)
	capture := httptest.NewRequest("POST", "/v1/payment_intents/pi_auth/capture", nil)
	est := vendors.Estimate{Known: true, Object: "pi_auth", Exposure: 12_000_000, Counted: 10_000_000, Cost: 2_000_000}
	res := v.Settle(capture, 200, nil, []byte(`{"id":"pi_auth","object":"payment_intent","amount":1000,"amount_received":1200,"currency":"usd","status":"succeeded"}`), est)
	if res.Decision != vendors.DecisionSettle || res.Cost != 2_000_000 || res.TxnID != "pi_auth" {
		t.Fatalf("overcapture settle = %+v", res)
	}
	confirm := httptest.NewRequest("POST", "/v1/payment_intents/pi_usd/confirm", nil)
	est = vendors.Estimate{Known: true, Object: "pi_usd", Exposure: 1_000_000_000, Counted: 1_000_000_000}
	res = v.Settle(confirm, 200, nil, []byte(`{"id":"pi_usd","object":"payment_intent","amount":100000,"amount_received":100000,"currency":"usd","status":"succeeded"}`), est)
	if res.Cost != 0 {
		t.Fatalf("confirm of a counted intent cost %s", res.Cost)
	}
	// Stripe's answer beats the estimate: the intent moved more than looked up.
	res = v.Settle(confirm, 200, nil, []byte(`{"id":"pi_usd","object":"payment_intent","amount":150000,"amount_received":150000,"currency":"usd"}`), est)
	if res.Cost != 500_000_000 {
		t.Fatalf("confirm settle = %s; want 500", res.Cost)
	}
	// A free call records the object and costs nothing.
	get := httptest.NewRequest("GET", "/v1/payment_intents/pi_usd", nil)
	res = v.Settle(get, 200, nil, []byte(`{"id":"pi_usd","object":"payment_intent","amount":100000,"currency":"usd"}`), vendors.Estimate{Known: true})
	if res.Cost != 0 || res.TxnID != "pi_usd" {
		t.Fatalf("free GET settle = %+v", res)
	}
	if !strings.HasPrefix(v.upstream, "http://127.0.0.1") {
		t.Fatalf("upstream %q", v.upstream)
	}
}

// TestTwoAccountsRefused: a request naming two accounts could be priced by
// a lookup as one and executed by Stripe as the other.
func TestTwoAccountsRefused(t *testing.T) {
	v, _ := newObjectVendor(t)
	for _, h := range scopeHeaders {
		r := httptest.NewRequest(http.MethodPost, "/v1/payment_intents/pi_usd/confirm", strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Add(h, "acct_A")
		r.Header.Add(h, "acct_B")
		_, err := v.Estimate(r, nil)
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != http.StatusBadRequest || ve.Code != "keybrake_duplicate_header" {
			t.Errorf("%s twice: %v", h, err)
		}
	}
}
