package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExampleRunsWithNoLedgerConfigured is a newcomer's first minute:
// Caddyfile.example with KEYBRAKE_LEDGER unset keeps an embedded ledger in
// the working directory, needs no outside service, and proxies a Stripe
// call through a freshly issued key (to stripe-mock here).
func TestExampleRunsWithNoLedgerConfigured(t *testing.T) {
	need(t, false)
	n := startNode(t, nodeConfig{ledger: "", env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"daily_usd_cap":     10,
		"allowed_endpoints": []string{"POST /v1/payment_intents", "GET /v1/customers/*"},
		"agent_run_label":   "first-minute",
	})
	c := stripeClient(n, key.VaultKey, "")
	pi, err := createPI(c, 250, "")
	if err != nil {
		t.Fatalf("charge through the example: %v", err)
	}
	if pi.Amount != 250 {
		t.Fatalf("PaymentIntent %+v", pi)
	}
	// A zero-cost call is recorded too, and costs nothing.
	status, _, _ := rawStripe(t, n, "GET", "/stripe/v1/customers/cus_123", "Bearer "+key.VaultKey, "")
	if status != 200 {
		t.Fatalf("GET customer through the /stripe prefix: %d", status)
	}
	k := getKey(t, n, key.KeyID)
	if k.Spent.String() != "2.5" || k.Calls != 2 || k.Remaining.String() != "7.5" {
		t.Fatalf("key = %+v; want $2.50 spent over 2 calls, $7.50 left today", k)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(n.logPath), "keybrake.db")); err != nil {
		t.Fatalf("no embedded ledger in the working directory: %v", err)
	}
}
