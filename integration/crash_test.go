package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/money"
)

// TestCrashMidFlightIsReconciled: a node is SIGKILLed with calls in flight
// against a slow simulated Stripe (which implements Stripe's search). Half
// the calls reach the vendor, which goes on to charge them after the node
// died; the other half never get there. Started again on the same ledger,
// the node's reconciler finds each charge by the call id Keybrake wrote in
// its metadata: within stale_reservation_after plus a reconciler period or
// two, the key's spent is exactly what the vendor moved and nothing stays
// reserved. Both ledgers.
func TestCrashMidFlightIsReconciled(t *testing.T) {
	for _, lg := range []struct {
		name     string
		postgres bool
	}{{"sqlite", false}, {"postgres", true}} {
		t.Run(lg.name, func(t *testing.T) {
			need(t, lg.postgres)
			dsn := sqliteLedger(t)
			if lg.postgres {
				dsn = freshDatabase(t)
			}
			crashAndReconcile(t, dsn)
		})
	}
}

func crashAndReconcile(t *testing.T, ledgerDSN string) {
	const inFlight = 8 // half reach the vendor, half never do
	sim := newSim()
	var arrived atomic.Int32
	release := make(chan struct{})
	// The slow front of the vendor: every create waits for the node's
	// death; then a "reach" call is executed by the vendor, a "lost" one
	// never gets there.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			arrived.Add(1)
			<-release
			if form.Get("description") == "lost" {
				return
			}
		}
		sim.Stripe().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	caddyfile := writeCaddyfile(t, fmt.Sprintf(`		stale_reservation_after 2s
		reconcile_interval 500ms
		reconcile_not_found_after 1s
		vendor stripe {
			secret_key %s
			upstream %s
		}`, simStripeSecret, front.URL), fmt.Sprintf(`	handle /v1/* {
		keybrake stripe
		reverse_proxy %s
	}`, front.URL))

	first := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: ledgerDSN})
	key := issueKey(t, first, map[string]any{
		"vendor": "stripe", "total_usd_cap": 100, "agent_run_label": "crash",
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
	})
	var clients sync.WaitGroup
	for i := range inFlight {
		desc := "reach"
		if i%2 == 1 {
			desc = "lost"
		}
		clients.Add(1)
		go func() {
			defer clients.Done()
			body := url.Values{"amount": {"500"}, "currency": {"usd"}, "confirm": {"true"},
				"payment_method": {"pm_card_visa"}, "description": {desc}}.Encode()
			req, _ := http.NewRequest("POST", first.url+"/v1/payment_intents", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key.VaultKey)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req); err == nil {
				resp.Body.Close() // the node dies first: an error is expected
			}
		}()
	}
	waitFor(t, "every call to reach the vendor's front", func() bool { return arrived.Load() == inFlight })
	if k := getKey(t, first, key.KeyID); k.Reserved.String() != "40" {
		t.Fatalf("before the crash: key = %+v; want $40 reserved", k)
	}
	crashedAt := time.Now()
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	clients.Wait() // the clients see the node die
	close(release)
	want := int64(inFlight / 2 * 5 * money.PerDollar)
	waitFor(t, "the vendor to charge the calls that reached it", func() bool { return sim.Moved(simvendor.VendorStripe) == want })

	second := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: ledgerDSN})
	var k keyView
	waitFor(t, "the reconciler to settle every call", func() bool {
		k = getKey(t, second, key.KeyID)
		return k.Reserved.String() == "0"
	})
	spent, err := money.ParseUSD(k.Spent.String())
	if err != nil || int64(spent) != sim.Moved(simvendor.VendorStripe) {
		t.Fatalf("spent %s; the vendor moved %d micro-dollars", k.Spent, sim.Moved(simvendor.VendorStripe))
	}
	settled, released := 0, 0
	var longest time.Duration
	for _, c := range audit(t, second, "crash") {
		switch {
		case c.CostState == "settled" && strings.HasPrefix(c.VendorTxnID, "pi_"):
			settled++
		case c.CostState == "released":
			released++
		default:
			t.Errorf("call left %s: %+v", c.CostState, c)
		}
		if c.ResolvedBy != "reconciler" || c.ResolvedAt == nil {
			t.Errorf("call not resolved by the reconciler: %+v", c)
			continue
		}
		started, _ := time.Parse(time.RFC3339Nano, c.StartedAt)
		resolved, _ := time.Parse(time.RFC3339Nano, *c.ResolvedAt)
		longest = max(longest, resolved.Sub(started))
	}
	if settled != inFlight/2 || released != inFlight/2 {
		t.Fatalf("settled %d, released %d; want %d each", settled, released, inFlight/2)
	}
	t.Logf("measured: money held at most %s from a call's start to its resolution; all resolved %s after the SIGKILL (stale_reservation_after 2s, reconcile_interval 500ms, reconcile_not_found_after 1s)",
		longest.Round(10*time.Millisecond), time.Since(crashedAt).Round(10*time.Millisecond))
	if p := sim.Problems(); len(p) > 0 {
		t.Fatalf("simulator problems: %v", p)
	}
}

// waitFor polls cond every 50ms, failing the test after 60s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLostAnswerIsReconciled: the vendor answers 500, once after it charged
// the card and once without doing anything. Both calls are kept unknown,
// then the reconciler settles the first at what the vendor moved and
// releases the second once reconcile_not_found_after has passed.
func TestLostAnswerIsReconciled(t *testing.T) {
	need(t, false)
	sim := newSim()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			if form.Get("description") == "charged" {
				sim.Stripe().ServeHTTP(httptest.NewRecorder(), r)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"An unknown error occurred"}}`))
			return
		}
		sim.Stripe().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	caddyfile := writeCaddyfile(t, fmt.Sprintf(`		reconcile_interval 500ms
		reconcile_not_found_after 1s
		vendor stripe {
			secret_key %s
			upstream %s
		}`, simStripeSecret, front.URL), fmt.Sprintf(`	handle /v1/* {
		keybrake stripe
		reverse_proxy %s
	}`, front.URL))
	n := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: sqliteLedger(t)})
	key := issueKey(t, n, map[string]any{
		"vendor": "stripe", "total_usd_cap": 100, "agent_run_label": "lost-answer",
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
	})
	for _, desc := range []string{"charged", "nothing"} {
		body := url.Values{"amount": {"700"}, "currency": {"usd"}, "confirm": {"true"},
			"payment_method": {"pm_card_visa"}, "description": {desc}}.Encode()
		status, _, _ := rawStripe(t, n, "POST", "/v1/payment_intents", "Bearer "+key.VaultKey, body)
		if status != http.StatusInternalServerError {
			t.Fatalf("%s: status %d; want the vendor's 500", desc, status)
		}
	}
	var k keyView
	waitFor(t, "the reconciler to resolve both calls", func() bool {
		k = getKey(t, n, key.KeyID)
		return k.Reserved.String() == "0"
	})
	if k.Spent.String() != "7" || sim.Moved(simvendor.VendorStripe) != int64(7*money.PerDollar) {
		t.Fatalf("spent %s, vendor moved %d; want $7 both", k.Spent, sim.Moved(simvendor.VendorStripe))
	}
	states := map[string]int{}
	for _, c := range audit(t, n, "lost-answer") {
		if c.ResolvedAt == nil || c.ResolvedBy != "reconciler" || c.Outcome != "forwarded" {
			t.Fatalf("call not reconciled: %+v", c)
		}
		states[c.CostState]++
		started, _ := time.Parse(time.RFC3339Nano, c.StartedAt)
		resolved, _ := time.Parse(time.RFC3339Nano, *c.ResolvedAt)
		t.Logf("measured: an unknown call (vendor 500) resolved %s after it started, %s", resolved.Sub(started).Round(10*time.Millisecond), c.CostState)
	}
	if states["settled"] != 1 || states["released"] != 1 {
		t.Fatalf("cost states = %v; want one settled, one released", states)
	}
}
