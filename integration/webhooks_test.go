package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybrake/keybrake/alerts"
)

const webhookSecret = "whsec_test_0123456789abcdef"

// webhookCaddyfile is Caddyfile.example with a webhook to url in the
// keybrake global option, retried quickly.
func webhookCaddyfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "\t\tapi_token {env.KEYBRAKE_API_TOKEN}\n"
	if !strings.Contains(string(b), anchor) {
		t.Fatalf("Caddyfile.example has no %q line to add a webhook after", anchor)
	}
	block := anchor + `		webhook ops {
			url {env.KEYBRAKE_WEBHOOK_URL}
			secret {env.KEYBRAKE_WEBHOOK_SECRET}
		}
		webhook_delivery {
			interval 1s
			min_backoff 1s
			max_backoff 2s
		}
`
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), anchor, block, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// hookReceiver is a webhook endpoint that checks each delivery's
// Keybrake-Signature with the shared secret, answering 400 to a bad one,
// and passes the good ones on.
type hookReceiver struct {
	t      *testing.T
	events chan map[string]any
	mu     sync.Mutex
	bad    []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	return &hookReceiver{t: t, events: make(chan map[string]any, 100)}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := alerts.Verify(webhookSecret, r.Header.Get(alerts.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		h.mu.Lock()
		h.bad = append(h.bad, err.Error())
		h.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ev["id"] != r.Header.Get("Keybrake-Event-Id") {
		http.Error(w, "event id header differs from the body", http.StatusBadRequest)
		return
	}
	h.events <- ev
}

// serve starts the receiver on addr ("127.0.0.1:0" for any port) and
// returns its URL; it stops when the test ends.
func (h *hookReceiver) serve(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/hooks/keybrake"
}

// await collects events until it has one for every wanted "type" or
// "type:threshold", failing on a duplicate (same type and threshold) or a
// bad signature, bounded by a deadline (not a timing assertion: the
// sender polls every second).
func (h *hookReceiver) await(t *testing.T, want ...string) map[string]map[string]any {
	t.Helper()
	got := map[string]map[string]any{}
	deadline := time.After(60 * time.Second)
	for len(got) < len(want) {
		select {
		case ev := <-h.events:
			name := ev["type"].(string)
			data := ev["data"].(map[string]any)
			if p, ok := data["threshold_percent"]; ok {
				name += fmt.Sprintf(":%v", p)
			}
			if _, dup := got[name]; dup {
				t.Errorf("event %s delivered twice: %v", name, ev)
			}
			got[name] = ev
		case <-deadline:
			t.Fatalf("events so far %v; want %v", keysOf(got), want)
		}
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("no %s event; got %v", w, keysOf(got))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bad) > 0 {
		t.Errorf("deliveries with a bad signature: %v", h.bad)
	}
	return got
}

func keysOf(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWebhooks runs a run to its cap through a real node: 50% and 80% of
// the cap, the cap hit and the revocation each arrive once, signed.
func TestWebhooks(t *testing.T) {
	need(t, false)
	rc := newHookReceiver(t)
	url := rc.serve(t, "127.0.0.1:0")
	n := startNode(t, nodeConfig{caddyfile: webhookCaddyfile(t), ledger: sqliteLedger(t), env: map[string]string{
		"STRIPE_API_BASE": env.stripeMock, "KEYBRAKE_WEBHOOK_URL": url, "KEYBRAKE_WEBHOOK_SECRET": webhookSecret,
	}})
	key := issueKey(t, n, map[string]any{
		"vendor": "stripe", "total_usd_cap": 10, "allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label": "hooks-1",
	})
	// $3 ×3 = $9: past 50% and 80%, under 100%; the 4th is a cap hit, and
	// so is the 5th (one cap_hit event).
	for i := range 5 {
		_, err := createPI(stripeClient(n, key.VaultKey, ""), 300, "")
		if i < 3 && err != nil {
			t.Fatalf("charge %d: %v", i+1, err)
		}
		if i >= 3 {
			stripeErr(t, err, http.StatusTooManyRequests, "keybrake_cap_hit")
		}
	}
	if code := apiCall(t, n, "DELETE", "/vault/keys/"+key.KeyID, nil, nil); code != http.StatusOK {
		t.Fatalf("revoking: %d", code)
	}
	got := rc.await(t, "key.threshold:50", "key.threshold:80", "key.cap_hit", "key.revoked")
	d := got["key.threshold:80"]["data"].(map[string]any)
	if d["key_id"] != key.KeyID || d["agent_run_label"] != "hooks-1" || d["cap"] != "total" ||
		d["cap_usd"] != 10.0 || d["spent_usd"] != 9.0 {
		t.Errorf("key.threshold 80%% data: %v", d)
	}
	if d := got["key.cap_hit"]["data"].(map[string]any); d["endpoint"] != "POST /v1/payment_intents" || d["remaining_usd"] != 1.0 {
		t.Errorf("key.cap_hit data: %v", d)
	}
	// Nothing more comes: no second cap_hit, no repeated threshold.
	select {
	case ev := <-rc.events:
		t.Errorf("an extra event: %v", ev)
	case <-time.After(2 * time.Second):
	}
}

// TestWebhooksSurviveRestart: events noticed while the receiver is down
// stay in the ledger's outbox across a restart of Keybrake and arrive once
// the receiver is up, on either ledger.
func TestWebhooksSurviveRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		need(t, false)
		testWebhooksSurviveRestart(t, sqliteLedger(t))
	})
	t.Run("postgres", func(t *testing.T) {
		need(t, true)
		testWebhooksSurviveRestart(t, freshDatabase(t))
	})
}

func testWebhooksSurviveRestart(t *testing.T, ledgerDSN string) {
	// A port with nothing listening yet: deliveries fail.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := nodeConfig{caddyfile: webhookCaddyfile(t), ledger: ledgerDSN, env: map[string]string{
		"STRIPE_API_BASE": env.stripeMock, "KEYBRAKE_WEBHOOK_URL": "http://" + addr + "/hooks/keybrake",
		"KEYBRAKE_WEBHOOK_SECRET": webhookSecret,
	}}
	first := startNode(t, cfg)
	key := issueKey(t, first, map[string]any{
		"vendor": "stripe", "total_usd_cap": 4, "allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label": "hooks-restart",
	})
	if _, err := createPI(stripeClient(first, key.VaultKey, ""), 300, ""); err != nil {
		t.Fatal(err)
	}
	if code := apiCall(t, first, "DELETE", "/vault/keys/"+key.KeyID, nil, nil); code != http.StatusOK {
		t.Fatalf("revoking: %d", code)
	}
	// The node has tried and failed (it logs each failure), then stops.
	waitLog(t, first, `"msg":"event delivery failed; will retry"`)
	first.stop()

	rc := newHookReceiver(t)
	rc.serve(t, addr)
	second := startNode(t, cfg)
	got := rc.await(t, "key.threshold:50", "key.revoked")
	if d := got["key.revoked"]["data"].(map[string]any); d["key_id"] != key.KeyID || d["agent_run_label"] != "hooks-restart" {
		t.Errorf("key.revoked data: %v", d)
	}
	_ = second
}

// waitLog waits, bounded, until the node's log contains s.
func waitLog(t *testing.T, n *node, s string) {
	t.Helper()
	for range 600 {
		if strings.Contains(n.log(t), s) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the node never logged %s", s)
}
