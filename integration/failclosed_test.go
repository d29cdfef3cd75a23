package integration

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// relay is a loopback TCP relay in front of Postgres that a test can cut,
// to make the ledger unreachable without touching the shared server.
type relay struct {
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newRelay(t *testing.T, target string) *relay {
	r := &relay{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.cut)
	return r
}

func (r *relay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns[c], r.conns[up] = true, true
			r.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every open connection.
func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
	r.conns = map[net.Conn]bool{}
}

// restore listens again on the same address.
func (r *relay) restore(t *testing.T) {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatalf("relay restore: %v", err)
	}
	r.serve(ln)
}

// TestFailClosed: with the ledger unreachable the gate answers 503 in
// Stripe's format and forwards nothing; when it is back, calls go through.
func TestFailClosed(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	u, _ := url.Parse(dsn)
	rl := newRelay(t, u.Host)
	u.Host = rl.addr
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

	rl.cut()
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

	rl.restore(t)
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
