package integration

import (
	"testing"
)

// TestIdempotencyReplayCountedOnce replays a charge with the same
// Idempotency-Key: the vendor answers both, Keybrake counts it once.
func TestIdempotencyReplayCountedOnce(t *testing.T) {
	need(t, true)
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: freshDatabase(t), env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     10,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label":   "idempotency",
	})
	c := stripeClient(n, key.VaultKey, "")
	for i := 0; i < 3; i++ {
		if _, err := createPI(c, 700, "order-42-charge"); err != nil {
			t.Fatalf("charge %d with the same idempotency key: %v", i, err)
		}
	}
	// A $7 charge on a $10 cap went through three times: only a replay
	// that is not counted again fits.
	if got := rec.count("POST", "/v1/payment_intents"); got != 3 {
		t.Fatalf("upstream saw %d calls; want 3 (the vendor answers replays itself)", got)
	}
	for _, q := range rec.requests() {
		if q.Header.Get("Idempotency-Key") != "order-42-charge" {
			t.Fatalf("Idempotency-Key upstream = %q", q.Header.Get("Idempotency-Key"))
		}
	}
	k := getKey(t, n, key.KeyID)
	if k.Spent.String() != "7" || k.Reserved.String() != "0" {
		t.Fatalf("key = %+v; want $7 spent once", k)
	}
	outcomes := map[string]int{}
	for _, call := range audit(t, n, "idempotency") {
		outcomes[call.Outcome]++
		if call.IdemKey != "order-42-charge" {
			t.Fatalf("audit row without its idempotency key: %+v", call)
		}
	}
	if outcomes["forwarded"] != 1 || outcomes["idempotent_replay"] != 2 {
		t.Fatalf("audit outcomes = %v; want 1 forwarded, 2 replays", outcomes)
	}
	// A different idempotency key is a new charge: $7 more does not fit.
	_, err := createPI(c, 700, "order-43-charge")
	stripeErr(t, err, 429, "keybrake_cap_hit")
}
