package integration

import (
	"net/http"
	"sync"
	"testing"
)

// TestRevocationAcrossNodes runs two Caddy nodes on one Postgres ledger. A
// run is charging through both; its key is revoked through node A; the very
// next call from any worker, on either node, is refused, and nothing more
// reaches the vendor.
func TestRevocationAcrossNodes(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	rec := newRecorder(t, env.stripeMock)
	a := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	b := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	key := issueKey(t, a, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     1000,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label":   "revocation",
	})
	clients := map[string]*node{"a": a, "b": b}

	// The run in progress: 10 workers, 5 charges each, on both nodes.
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		n := a
		if i%2 == 1 {
			n = b
		}
		go func(n *node) {
			defer wg.Done()
			c := stripeClient(n, key.VaultKey, "")
			for j := 0; j < 5; j++ {
				if _, err := createPI(c, 100, ""); err != nil {
					t.Errorf("charge before revocation: %v", err)
				}
			}
		}(n)
	}
	wg.Wait()
	if got := rec.total(); got != 50 {
		t.Fatalf("upstream saw %d calls before revocation; want 50", got)
	}

	var revoked keyView
	if code := apiCall(t, a, "DELETE", "/vault/keys/"+key.KeyID, nil, &revoked); code != http.StatusOK || revoked.Status != "revoked" {
		t.Fatalf("revoking: %d %+v", code, revoked)
	}

	// Straight after the DELETE returns: every worker on every node is
	// refused, with a Stripe error the SDK raises and does not retry.
	for name, n := range clients {
		var wg sync.WaitGroup
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := createPI(stripeClient(n, key.VaultKey, ""), 100, "")
				se := stripeErr(t, err, http.StatusUnauthorized, "keybrake_key_revoked")
				if se.LastResponse == nil || se.LastResponse.Header.Get("Stripe-Should-Retry") != "false" {
					t.Errorf("node %s: revoked answer lacks Stripe-Should-Retry: false", name)
				}
			}()
		}
		wg.Wait()
	}
	if got := rec.total(); got != 50 {
		t.Fatalf("upstream saw %d calls; nothing should have reached it after revocation", got)
	}
	k := getKey(t, b, key.KeyID)
	if k.Status != "revoked" || k.Spent.String() != "50" || k.Calls != 50 {
		t.Fatalf("key after revocation, read on node b = %+v", k)
	}
}
