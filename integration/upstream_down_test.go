package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestUpstreamDown: the vendor cannot be reached. The client gets a
// Stripe-shaped 502 it may retry, the reservation is kept as unknown (the
// call may or may not have been made), and Caddy's error logs, which include
// the request, show neither the real secret nor the vault key.
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
	wantStripeError(t, "upstream down", status, h, env, http.StatusBadGateway, "keybrake_upstream_error")
	if h.Get("Stripe-Should-Retry") == "false" {
		t.Error("an ambiguous failure told the SDK never to retry")
	}
	calls := audit(t, n, "upstream-down")
	if len(calls) != 1 || calls[0].Outcome != "upstream_error" || calls[0].CostState != "unknown" || calls[0].Reserved.String() != "4" {
		t.Fatalf("audit = %+v", calls)
	}
	if k := getKey(t, n, key.KeyID); k.Reserved.String() != "4" || k.Remaining.String() != "6" {
		t.Fatalf("key = %+v; want $4 still reserved", k)
	}
	logs := n.log(t)
	if strings.Contains(logs, realSecret) || strings.Contains(logs, key.VaultKey) {
		t.Fatal("a secret appeared in Caddy's log")
	}
	if !strings.Contains(logs, "upstream_error") {
		t.Fatal("the failure was not logged at all: the leak check would prove nothing")
	}
}
