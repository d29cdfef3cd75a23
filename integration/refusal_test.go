package integration

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// TestRefusals sends every kind of call Keybrake must refuse, and checks
// each gets its status and a Stripe-shaped body, and that nothing at all
// reaches the vendor.
func TestRefusals(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	key := issueKey(t, n, map[string]any{
		"vendor":        "stripe",
		"total_usd_cap": 50,
		"allowed_endpoints": []string{
			"POST /v1/payment_intents",
			"POST /v1/payment_intents/*/confirm",
			"POST /v1/subscriptions",
		},
		"agent_run_label": "refusals",
	})

	// Keys the API cannot issue (already expired; another vendor) are put
	// straight into the same ledger.
	store, err := ledger.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC()
	fifty := ledgerMicros(50)
	expiredSecret := "kbExpiredKey0000000000000000000000000000000"
	otherSecret := "kbOtherVendorKey00000000000000000000000000"
	for _, k := range []ledger.Key{
		{ID: "vkExpired000000000000001", Hash: ledger.HashSecret(expiredSecret), Vendor: "stripe", TotalCap: &fifty,
			AllowedEndpoints: []string{"POST /v1/payment_intents"}, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), RunLabel: "refusals"},
		{ID: "vkOtherVendor0000000001", Hash: ledger.HashSecret(otherSecret), Vendor: "resend", TotalCap: &fifty,
			AllowedEndpoints: []string{"POST /v1/payment_intents"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), RunLabel: "refusals"},
	} {
		if err := store.CreateKey(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}

	bearer := func(s string) string { return "Bearer " + s }
	cases := []struct {
		name, method, path, auth, body string
		status                         int
		code                           string
	}{
		{"missing credential", "POST", "/stripe/v1/payment_intents", "", "amount=500&currency=usd", 401, "keybrake_missing_credential"},
		{"malformed credential", "POST", "/stripe/v1/payment_intents", "Bearer not/a-vault_key!", "amount=500&currency=usd", 401, "keybrake_missing_credential"},
		{"malformed basic", "POST", "/stripe/v1/payment_intents", "Basic %%%", "amount=500&currency=usd", 401, "keybrake_missing_credential"},
		{"unknown key", "POST", "/stripe/v1/payment_intents", bearer("kbUnknownKey0000000000000000000000000000000"), "amount=500&currency=usd", 401, "keybrake_invalid_key"},
		{"the real secret is not a vault key", "POST", "/stripe/v1/payment_intents", bearer(realSecret), "amount=500&currency=usd", 401, "keybrake_missing_credential"},
		{"expired key", "POST", "/stripe/v1/payment_intents", bearer(expiredSecret), "amount=500&currency=usd", 401, "keybrake_key_expired"},
		{"key of another vendor", "POST", "/stripe/v1/payment_intents", bearer(otherSecret), "amount=500&currency=usd", 401, "keybrake_wrong_vendor"},
		{"endpoint outside the allowlist", "POST", "/stripe/v1/payouts", bearer(key.VaultKey), "amount=500&currency=usd", 403, "keybrake_endpoint_denied"},
		{"GET outside the allowlist", "GET", "/stripe/v1/customers", bearer(key.VaultKey), "", 403, "keybrake_endpoint_denied"},
		// Caddy cleans these paths before any handler runs; the gate checks
		// the cleaned path, which is the one reverse_proxy would send.
		{"encoded-slash bypass", "POST", "/stripe/v1/payment_intents%2F..%2Fpayouts", bearer(key.VaultKey), "amount=500&currency=usd", 403, "keybrake_endpoint_denied"},
		{"dot-segment bypass", "POST", "/stripe/v1/payment_intents/%2e%2e/payouts", bearer(key.VaultKey), "amount=500&currency=usd", 403, "keybrake_endpoint_denied"},
		{"double-slash", "POST", "/v1//payment_intents", bearer(key.VaultKey), "amount=500&currency=usd", 400, "keybrake_bad_path"},
		{"unknown cost (a subscription)", "POST", "/stripe/v1/subscriptions", bearer(key.VaultKey), "customer=cus_1", 403, "keybrake_unknown_cost"},
		{"missing amount", "POST", "/stripe/v1/payment_intents", bearer(key.VaultKey), "currency=usd", 400, "parameter_missing"},
		{"smuggled second amount", "POST", "/stripe/v1/payment_intents", bearer(key.VaultKey), "amount=1&amount=500000&currency=usd", 400, "keybrake_duplicate_param"},
		{"currency without a rate", "POST", "/stripe/v1/payment_intents", bearer(key.VaultKey), "amount=500&currency=gbp", 400, "keybrake_currency_not_priced"},
		{"amount past int64", "POST", "/stripe/v1/payment_intents", bearer(key.VaultKey), "amount=9223372036854775808&currency=usd", 400, "parameter_invalid_integer"},
		{"amount no cap can hold", "POST", "/stripe/v1/payment_intents", bearer(key.VaultKey), "amount=9223372036854775807&currency=usd", 400, "amount_too_large"},
		{"over the cap in one call", "POST", "/stripe/v1/payment_intents", bearer(key.VaultKey), "amount=5001&currency=usd", 429, "keybrake_cap_hit"},
		{"vault key as Basic user, wrong vendor path", "POST", "/stripe/v1/payouts", "Basic " + base64.StdEncoding.EncodeToString([]byte(key.VaultKey+":")), "amount=1&currency=usd", 403, "keybrake_endpoint_denied"},
	}
	for _, c := range cases {
		status, h, env := rawStripe(t, n, c.method, c.path, c.auth, c.body)
		wantStripeError(t, c.name, status, h, env, c.status, c.code)
		if h.Get("Stripe-Should-Retry") != "false" {
			t.Errorf("%s: Stripe-Should-Retry = %q; want false", c.name, h.Get("Stripe-Should-Retry"))
		}
		if (c.status == http.StatusTooManyRequests) != (h.Get("X-Keybrake-Cap-Hit") == "true") {
			t.Errorf("%s: X-Keybrake-Cap-Hit = %q", c.name, h.Get("X-Keybrake-Cap-Hit"))
		}
	}
	if got := rec.total(); got != 0 {
		t.Fatalf("the vendor received %d requests; every one should have been refused", got)
	}

	// A refused call with a known key is in the audit log, counted in its
	// key's record of that outcome and minute.
	calls := audit(t, n, "refusals")
	outcomes := map[string]int{}
	for _, c := range calls {
		outcomes[c.Outcome] += c.Count
		if c.Cost.String() != "0" {
			t.Errorf("refused call with a cost: %+v", c)
		}
	}
	for outcome, want := range map[string]int{"expired": 1, "wrong_vendor": 1, "endpoint_denied": 5, "bad_request": 6, "unknown_cost_denied": 1, "cap_hit": 1} {
		if outcomes[outcome] != want {
			t.Errorf("audit has %d %s calls; want %d (all: %v)", outcomes[outcome], outcome, want, outcomes)
		}
	}
}
