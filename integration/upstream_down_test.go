package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamDown: nothing listens where the vendor should be. Each call,
// raw or through stripe-go with its default retries, is told that nothing
// was sent and a retry is safe (Stripe-Should-Retry: true); every attempt
// is recorded and released, so the key keeps its whole cap. Caddy's error
// logs, which include the request, show neither the real secret nor the
// vault key.
func TestUpstreamDown(t *testing.T) {
	need(t, false)
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort())
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": dead}})
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     10,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label":   "upstream-down",
	})
	status, h, env := rawStripe(t, n, "POST", "/v1/payment_intents", "Bearer "+key.VaultKey, "amount=400&currency=usd")
	wantStripeError(t, "upstream down", status, h, env, http.StatusBadGateway, "keybrake_upstream_unreachable")
	if h.Get("Stripe-Should-Retry") != "true" {
		t.Errorf("Stripe-Should-Retry = %q; want true: nothing was sent", h.Get("Stripe-Should-Retry"))
	}
	const sdkCalls = 3
	sc := stripeClient(n, key.VaultKey, "")
	for i := 0; i < sdkCalls; i++ {
		_, err := createPI(sc, 400, "")
		stripeErr(t, err, http.StatusBadGateway, "keybrake_upstream_unreachable")
	}
	calls := audit(t, n, "upstream-down")
	// The raw call and each SDK call, with whatever retries the SDK made
	// (stripe-go v82 retries no parsed Stripe error but a lock timeout;
	// stripe-node and stripe-python obey Stripe-Should-Retry: true).
	if len(calls) < 1+sdkCalls || len(calls) > 1+sdkCalls*3 {
		t.Fatalf("audit has %d calls; want %d to %d", len(calls), 1+sdkCalls, 1+sdkCalls*3)
	}
	for _, c := range calls {
		if c.Outcome != "upstream_unreachable" || c.CostState != "released" || c.StatusCode != http.StatusBadGateway {
			t.Fatalf("call = %+v; want released as upstream_unreachable", c)
		}
	}
	if k := getKey(t, n, key.KeyID); k.Reserved.String() != "0" || k.Remaining.String() != "10" || k.Spent.String() != "0" {
		t.Fatalf("key = %+v; want nothing held and the whole $10 left", k)
	}
	logs := n.log(t)
	if strings.Contains(logs, realSecret) || strings.Contains(logs, key.VaultKey) {
		t.Fatal("a secret appeared in Caddy's log")
	}
	if !strings.Contains(logs, "connection refused") {
		t.Fatal("the failure was not logged at all: the leak check would prove nothing")
	}
}
