package integration

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/keybrake/keybrake/internal/tcprelay"
)

// TestFailClosed: with the ledger unreachable the gate answers 503 in
// Stripe's format and forwards nothing; when it is back, calls go through.
func TestFailClosed(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	u, _ := url.Parse(dsn)
	rl := tcprelay.Start(t, u.Host)
	u.Host = rl.Addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()

	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: u.String(), env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     100,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label":   "fail-closed",
	})
	c := stripeClient(n, key.VaultKey, "")
	if _, err := createPI(c, 100, ""); err != nil {
		t.Fatalf("charge with the ledger up: %v", err)
	}

	rl.Stop()
	// The key is in the gate's cache by now: the refusal must come from
	// the reservation itself, not from a failed lookup.
	for i := 0; i < 5; i++ {
		status, h, env := rawStripe(t, n, "POST", "/v1/payment_intents", "Bearer "+key.VaultKey, "amount=100&currency=usd")
		wantStripeError(t, "ledger down", status, h, env, http.StatusServiceUnavailable, "keybrake_ledger_unavailable")
	}
	// A key the gate has never seen: the lookup fails closed too.
	status, h, env := rawStripe(t, n, "POST", "/v1/payment_intents", "Bearer kbNeverSeenKey00000000000000000000000", "amount=100&currency=usd")
	wantStripeError(t, "ledger down, uncached key", status, h, env, http.StatusServiceUnavailable, "keybrake_ledger_unavailable")
	if code := apiCall(t, n, "GET", "/vault/keys/"+key.KeyID, nil, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("key API with the ledger down: %d; want 503", code)
	}
	if got := rec.total(); got != 1 {
		t.Fatalf("upstream saw %d calls; only the one made before the outage should have reached it", got)
	}

	rl.Restore(t)
	var err error
	for i := 0; i < 50; i++ { // the pool reconnects on demand; bounded
		if _, err = createPI(c, 100, ""); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("charge after the ledger came back: %v", err)
	}
	if k := getKey(t, n, key.KeyID); k.Spent.String() != "2" || k.Reserved.String() != "0" {
		t.Fatalf("key after the outage = %+v; want $2 spent", k)
	}
}
