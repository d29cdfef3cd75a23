package integration

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// TestFanOutPostgres is the story Keybrake exists for: a run whose key is
// capped at $100 fans out 200 workers each charging $5 through the official
// SDK. Exactly 20 charges go through; the other 180 are refused at the cap,
// surfaced by the SDK as errors, and never retried.
func TestFanOutPostgres(t *testing.T) {
	need(t, true)
	testFanOut(t, freshDatabase(t))
}

// TestFanOutEmbedded runs the same story on the embedded SQLite ledger.
func TestFanOutEmbedded(t *testing.T) {
	need(t, false)
	testFanOut(t, sqliteLedger(t))
}

func testFanOut(t *testing.T, ledgerDSN string) {
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: ledgerDSN, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	label := fmt.Sprintf("windmill/fanout-%d", time.Now().UnixNano())
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     100,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"expires_in":        "1h",
		"agent_run_label":   label,
	})
	// stripe-go v82 checks that every request path starts with /v1 or /v2,
	// so like stripe-node it is pointed at Keybrake's bare address.
	client := stripeClient(n, key.VaultKey, "")

	const workers = 200
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok       []*stripe.PaymentIntent
		capHits  int
		unwanted []error
	)
	start := time.Now()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pi, err := createPI(client, 500, "")
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok = append(ok, pi)
				return
			}
			var se *stripe.Error
			if errors.As(err, &se) && se.HTTPStatusCode == http.StatusTooManyRequests && se.Code == "keybrake_cap_hit" &&
				se.LastResponse != nil && se.LastResponse.Header.Get("X-Keybrake-Cap-Hit") == "true" {
				capHits++
				return
			}
			unwanted = append(unwanted, err)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("fan-out of %d calls took %s (%.0f calls/s)", workers, elapsed, float64(workers)/elapsed.Seconds())

	if len(unwanted) > 0 {
		t.Fatalf("%d unexpected errors, first: %v", len(unwanted), unwanted[0])
	}
	if len(ok) != 20 || capHits != 180 {
		t.Fatalf("succeeded %d, cap hits %d; want 20 and 180", len(ok), capHits)
	}
	for _, pi := range ok {
		if !strings.HasPrefix(pi.ID, "pi_") || pi.Amount != 500 {
			t.Fatalf("PaymentIntent %+v", pi)
		}
	}
	if got := rec.count("POST", "/v1/payment_intents"); got != 20 {
		t.Fatalf("upstream saw %d PaymentIntent creates; want exactly 20", got)
	}
	if got := rec.total(); got != 20 {
		t.Fatalf("upstream saw %d requests in all; want 20", got)
	}

	k := getKey(t, n, key.KeyID)
	if k.Spent.String() != "100" || k.Reserved.String() != "0" || k.Remaining.String() != "0" || k.Calls != 20 || k.CapHits != 180 {
		t.Fatalf("key after fan-out = %+v; want spent 100, reserved 0, remaining 0, 20 calls, 180 cap hits", k)
	}
	s := getSummary(t, n, label)
	// 200 calls in all: had the SDK retried a cap hit, there would be more.
	if s.Calls != 200 || s.Forwarded != 20 || s.CapHits != 180 || s.Spent.String() != "100" || s.Reserved.String() != "0" {
		t.Fatalf("summary = %+v; want 200 calls, 20 forwarded, 180 cap hits, $100 spent", s)
	}

	// Audit: every forwarded call has its pi_, its cost and the run label.
	calls := audit(t, n, label)
	if counted(calls) != 200 || len(calls) > 20+3 {
		t.Fatalf("audit has %d records counting %d calls; want 200 calls, the cap hits in a record a minute", len(calls), counted(calls))
	}
	seen := map[string]bool{}
	for _, pi := range ok {
		seen[pi.ID] = false
	}
	forwarded := 0
	for _, c := range calls {
		if c.RunLabel != label || c.KeyID != key.KeyID || c.Vendor != "stripe" {
			t.Fatalf("audit row %+v", c)
		}
		switch c.Outcome {
		case "forwarded":
			forwarded++
			if !strings.HasPrefix(c.VendorTxnID, "pi_") || c.Cost.String() != "5" || c.CostState != "settled" ||
				c.StatusCode != 200 || c.Endpoint != "POST /v1/payment_intents" {
				t.Fatalf("forwarded audit row %+v", c)
			}
			if _, ok := seen[c.VendorTxnID]; !ok {
				t.Fatalf("audit names %s, which no worker got", c.VendorTxnID)
			}
		case "cap_hit":
			if c.Cost.String() != "0" || c.VendorTxnID != "" || c.StatusCode != 429 {
				t.Fatalf("cap hit audit row %+v", c)
			}
		default:
			t.Fatalf("unexpected outcome %+v", c)
		}
	}
	if forwarded != 20 {
		t.Fatalf("audit shows %d forwarded; want 20", forwarded)
	}
}
