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
// against a slow simulated vendor (Stripe with its search, Twilio with its
// message list). Half the calls reach the vendor, which goes on to act on
// them after the node died; the other half never get there. Started again
// on the same ledger, the node's reconciler finds each object (Stripe by
// the call id Keybrake wrote in its metadata, Twilio by listing the
// messages to the call's To): within stale_reservation_after plus a
// reconciler period or two, the key's spent is exactly what the vendor
// moved and nothing stays reserved. Both ledgers.
func TestCrashMidFlightIsReconciled(t *testing.T) {
	for _, lg := range []struct {
		name     string
		postgres bool
	}{{"sqlite", false}, {"postgres", true}} {
		for _, vc := range []crashVendor{crashStripe, crashTwilio} {
			t.Run(lg.name+"/"+vc.name, func(t *testing.T) {
				need(t, lg.postgres)
				dsn := sqliteLedger(t)
				if lg.postgres {
					dsn = freshDatabase(t)
				}
				crashAndReconcile(t, dsn, vc)
			})
		}
	}
}

// crashVendor is one vendor's side of the crash test.
type crashVendor struct {
	name, vendor string
	createPath   string // the create the slow front holds back
	lost         func(form url.Values) bool
	block        func(front string) string // its vendor block
	route        string                    // the path matcher of its route
	endpoint     string
	txnPrefix    string
	request      func(node, vaultKey string, i int, lost bool) *http.Request
}

var crashStripe = crashVendor{
	name: "stripe", vendor: simvendor.VendorStripe, createPath: "/v1/payment_intents",
	lost: func(f url.Values) bool { return f.Get("description") == "lost" },
	block: func(front string) string {
		return fmt.Sprintf("\t\tvendor stripe {\n\t\t\tsecret_key %s\n\t\t\tupstream %s\n\t\t}", simStripeSecret, front)
	},
	route: "/v1/*", endpoint: "POST /v1/payment_intents", txnPrefix: "pi_",
	request: func(node, vaultKey string, i int, lost bool) *http.Request {
		desc := map[bool]string{true: "lost", false: "reach"}[lost]
		body := url.Values{"amount": {"500"}, "currency": {"usd"}, "confirm": {"true"},
			"payment_method": {"pm_card_visa"}, "description": {desc}}.Encode()
		req, _ := http.NewRequest("POST", node+"/v1/payment_intents", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+vaultKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	},
}

var crashTwilio = crashVendor{
	name: "twilio", vendor: simvendor.VendorTwilio, createPath: "/2010-04-01/Accounts/" + simTwilioSID + "/Messages.json",
	lost: func(f url.Values) bool { return f.Get("Body") == "lost" },
	block: func(front string) string {
		return fmt.Sprintf("\t\tvendor twilio {\n\t\t\taccount_sid %s\n\t\t\tauth_token %s\n\t\t\tupstream %s\n\t\t}",
			simTwilioSID, simTwilioToken, front)
	},
	route: "/2010-04-01/*", endpoint: "POST /2010-04-01/Accounts/*/Messages.json", txnPrefix: "SM",
	request: func(node, vaultKey string, i int, lost bool) *http.Request {
		text := map[bool]string{true: "lost", false: "reach"}[lost]
		body := url.Values{"To": {fmt.Sprintf("+1555010%04d", i)}, "From": {"+15550009999"}, "Body": {text}}.Encode()
		req, _ := http.NewRequest("POST", node+"/2010-04-01/Accounts/"+twilioClientSID+"/Messages.json", strings.NewReader(body))
		req.SetBasicAuth(twilioClientSID, vaultKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	},
}

func crashAndReconcile(t *testing.T, ledgerDSN string, vc crashVendor) {
	const inFlight = 8 // half reach the vendor, half never do
	sim := newSim()
	var handler http.Handler = sim.Stripe()
	if vc.vendor == simvendor.VendorTwilio {
		handler = sim.Twilio()
	}
	var arrived atomic.Int32
	release := make(chan struct{})
	// The slow front of the vendor: every create waits for the node's
	// death; then a "reach" call is executed by the vendor, a "lost" one
	// never gets there.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == vc.createPath {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			arrived.Add(1)
			<-release
			if vc.lost(form) {
				return
			}
		}
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	caddyfile := writeCaddyfile(t, "\t\tstale_reservation_after 2s\n\t\treconcile_interval 500ms\n\t\treconcile_not_found_after 1s\n"+
		vc.block(front.URL), fmt.Sprintf("\thandle %s {\n\t\tkeybrake %s\n\t\treverse_proxy %s\n\t}", vc.route, vc.name, front.URL))

	first := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: ledgerDSN})
	key := issueKey(t, first, map[string]any{
		"vendor": vc.name, "total_usd_cap": 100, "agent_run_label": "crash",
		"allowed_endpoints": []string{vc.endpoint},
	})
	var clients sync.WaitGroup
	for i := range inFlight {
		req := vc.request(first.url, key.VaultKey, i, i%2 == 1)
		clients.Add(1)
		go func() {
			defer clients.Done()
			if resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req); err == nil {
				resp.Body.Close() // the node dies first: an error is expected
			}
		}()
	}
	waitFor(t, "every call to reach the vendor's front", func() bool { return arrived.Load() == inFlight })
	if k := getKey(t, first, key.KeyID); k.Reserved.String() == "0" {
		t.Fatalf("before the crash: key = %+v; want the calls reserved", k)
	}
	crashedAt := time.Now()
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	clients.Wait() // the clients see the node die
	close(release)
	waitFor(t, "the vendor to act on the calls that reached it", func() bool {
		return len(sim.Events()) >= inFlight/2 && sim.Moved(vc.vendor) > 0
	})

	second := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: ledgerDSN})
	var k keyView
	waitFor(t, "the reconciler to settle every call", func() bool {
		k = getKey(t, second, key.KeyID)
		return k.Reserved.String() == "0"
	})
	spent, err := money.ParseUSD(k.Spent.String())
	if err != nil || int64(spent) != sim.Moved(vc.vendor) {
		t.Fatalf("spent %s; the vendor moved %d micro-dollars", k.Spent, sim.Moved(vc.vendor))
	}
	settled, released := 0, 0
	var longest time.Duration
	for _, c := range audit(t, second, "crash") {
		switch {
		case c.CostState == "settled" && strings.HasPrefix(c.VendorTxnID, vc.txnPrefix):
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
