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

	"github.com/keybrake/keybrake/money"
)

// TestCrashMidBatch: 48 clients hammer one key (a $200 cap, $1 a call)
// through a node whose ledger writes in batches, and the node is SIGKILLed
// while they do, with reservations and settlements in flight. Read back
// through a second node on the same ledger, every call the vendor saw has
// a durable record holding its money (reserved, settled or unknown: never
// released, never missing), the key's counters match its calls, and the
// vendor saw no more calls than the cap pays for. Both ledgers.
func TestCrashMidBatch(t *testing.T) {
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
			crashMidBatch(t, dsn)
		})
	}
}

func crashMidBatch(t *testing.T, ledgerDSN string) {
	const (
		clients = 48
		capUSD  = 200
		killAt  = 120 // vendor calls seen before the node is killed
	)
	sim := newSim()
	var (
		mu   sync.Mutex
		seen = map[string]bool{} // the Keybrake call ids the vendor got
	)
	killed := make(chan struct{})
	var arrived atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/payment_intents" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return // cut short by the node's death: never a call
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			mu.Lock()
			seen[form.Get("metadata[keybrake_call_id]")] = true
			mu.Unlock()
			if arrived.Add(1) == killAt {
				close(killed)
			}
		}
		sim.Stripe().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	caddyfile := writeCaddyfile(t, fmt.Sprintf("\t\tvendor stripe {\n\t\t\tsecret_key %s\n\t\t\tupstream %s\n\t\t}", simStripeSecret, front.URL),
		fmt.Sprintf("\thandle /v1/* {\n\t\tkeybrake stripe\n\t\treverse_proxy %s\n\t}", front.URL))

	first := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: ledgerDSN})
	key := issueKey(t, first, map[string]any{
		"vendor": "stripe", "total_usd_cap": capUSD, "agent_run_label": "crash-batch",
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				body := url.Values{"amount": {"100"}, "currency": {"usd"}}.Encode()
				req, _ := http.NewRequest("POST", first.url+"/v1/payment_intents", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key.VaultKey)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				if err != nil {
					return // the node is dead
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("the vendor never saw enough calls")
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()

	second := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: ledgerDSN})
	k := getKey(t, second, key.KeyID)
	calls := audit(t, second, "crash-batch")
	byID := map[string]auditCall{}
	var counted money.Micros
	for _, c := range calls {
		byID[c.Tag] = c // the vendor sees the call's tag
		reserved, _ := money.ParseUSD(c.Reserved.String())
		cost, _ := money.ParseUSD(c.Cost.String())
		switch c.CostState {
		case "reserved", "unknown":
			counted += reserved
		case "settled", "unpriced":
			counted += cost
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range seen {
		c, ok := byID[id]
		if !ok {
			t.Errorf("the vendor saw call %q, which the ledger has no record of", id)
			continue
		}
		if c.Outcome != "forwarded" || c.Reserved.String() != "1" ||
			(c.CostState != "reserved" && c.CostState != "settled" && c.CostState != "unknown") {
			t.Errorf("the vendor saw call %s, recorded as %+v; want forwarded with its $1 held or spent", id, c)
		}
	}
	spent, _ := money.ParseUSD(k.Spent.String())
	reserved, _ := money.ParseUSD(k.Reserved.String())
	if spent+reserved != counted {
		t.Errorf("key counts spent %s + reserved %s; its calls count %s", k.Spent, k.Reserved, counted)
	}
	if spent+reserved > capUSD*money.PerDollar || len(seen) > capUSD {
		t.Errorf("cap exceeded: spent %s, reserved %s, the vendor saw %d calls; cap $%d", k.Spent, k.Reserved, len(seen), capUSD)
	}
	if len(seen) < killAt {
		t.Fatalf("the vendor saw %d calls; want at least %d", len(seen), killAt)
	}
	states := map[string]int{}
	for _, c := range calls {
		states[c.Outcome+"/"+c.CostState]++
	}
	t.Logf("measured: the vendor saw %d calls before the SIGKILL; the ledger has %v; key spent %s, reserved %s",
		len(seen), states, k.Spent, k.Reserved)
}
