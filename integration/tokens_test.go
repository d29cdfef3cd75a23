package integration

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v82"
)

// issuerToken creates an issuer API token through n as the bootstrap admin
// and returns its id and secret.
func issuerToken(t *testing.T, n *node, policy map[string]any) (string, string) {
	t.Helper()
	var tk struct {
		TokenID string `json:"token_id"`
		Token   string `json:"token"`
	}
	body := map[string]any{"name": "windmill-prod", "role": "issuer", "policy": policy}
	if code := apiCall(t, n, "POST", "/vault/tokens", body, &tk); code != http.StatusCreated || tk.Token == "" {
		t.Fatalf("creating token: %d %+v", code, tk)
	}
	return tk.TokenID, tk.Token
}

// TestTokenBudgetAcrossNodes: three keys of one issuer token, each with a
// cap far above the token's $137 budget, charge $1 each 300 times at once
// through two Caddy nodes on one Postgres. Spend stops exactly at the
// budget; every extra call is a 429 with X-Keybrake-Budget: token that
// stripe-go surfaces and does not retry; nothing more reaches Stripe.
func TestTokenBudgetAcrossNodes(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	rec := newRecorder(t, env.stripeMock)
	a := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	b := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	const budget, charges = 137, 300
	tokenID, token := issuerToken(t, a, map[string]any{"vendors": []string{"stripe"}, "total_usd_cap": budget, "run_label_prefix": "wm/"})

	var keys []issuedKey
	for i := range 3 {
		var k issuedKey
		req := map[string]any{"vendor": "stripe", "total_usd_cap": 1000, "expires_in": "1h",
			"allowed_endpoints": []string{"POST /v1/payment_intents"}, "agent_run_label": fmt.Sprintf("wm/budget-%d", i)}
		if code := apiCallAs(t, a, token, "POST", "/vault/keys", req, &k); code != http.StatusCreated {
			t.Fatalf("issuing key %d as the issuer: %d", i, code)
		}
		keys = append(keys, k)
	}

	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		ok, budgetHits  int
		unwanted        []error
		start           = make(chan struct{})
		nodes           = []*node{a, b}
		clientsByWorker = make([]*stripe.Client, charges)
	)
	for i := range charges {
		clientsByWorker[i] = stripeClient(nodes[i%2], keys[i%3].VaultKey, "")
	}
	for i := range charges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := createPI(clientsByWorker[i], 100, "")
			mu.Lock()
			defer mu.Unlock()
			var se *stripe.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &se) && se.HTTPStatusCode == http.StatusTooManyRequests && se.Code == "keybrake_budget_hit" &&
				se.LastResponse != nil && se.LastResponse.Header.Get("X-Keybrake-Budget") == "token" &&
				se.LastResponse.Header.Get("X-Keybrake-Cap-Hit") == "true":
				budgetHits++
			default:
				unwanted = append(unwanted, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(unwanted) > 0 {
		t.Fatalf("%d unexpected errors, first: %v", len(unwanted), unwanted[0])
	}
	if ok != budget || budgetHits != charges-budget {
		t.Fatalf("succeeded %d, budget hits %d; want %d and %d", ok, budgetHits, budget, charges-budget)
	}
	if got := rec.total(); got != budget {
		t.Fatalf("Stripe saw %d requests; want exactly %d", got, budget)
	}
	// Node a may still hold settlements in its batch queue when node b is
	// read: wait until no key has money reserved, then read the totals.
	waitFor(t, "every reservation settled", func() bool {
		for _, k := range keys {
			if getKey(t, b, k.KeyID).Reserved.String() != "0" {
				return false
			}
		}
		return true
	})
	var spent, calls, capHits int64
	for _, k := range keys {
		v := getKey(t, b, k.KeyID)
		n, _ := v.Spent.Int64()
		spent += n
		calls += v.Calls
		capHits += v.CapHits
	}
	if spent != budget || calls != budget || capHits != charges-budget {
		t.Fatalf("keys: spent $%d, %d calls, %d cap hits; want $%d, %d, %d", spent, calls, capHits, budget, budget, charges-budget)
	}
	var tv struct {
		Spent    string `json:"spent_usd"`
		Reserved string `json:"reserved_usd"`
	}
	var raw map[string]any
	if code := apiCall(t, b, "GET", "/vault/tokens/"+tokenID, nil, &raw); code != http.StatusOK {
		t.Fatalf("GET token: %d", code)
	}
	tv.Spent, tv.Reserved = fmt.Sprint(raw["spent_usd"]), fmt.Sprint(raw["reserved_usd"])
	if tv.Spent != fmt.Sprint(budget) || tv.Reserved != "0" {
		t.Fatalf("token budget usage = %+v; want spent %d, reserved 0", tv, budget)
	}
	hits := 0
	for _, k := range keys {
		var page struct {
			Data []struct {
				Outcome    string `json:"outcome"`
				StatusCode int    `json:"status_code"`
				Count      int    `json:"count"`
			} `json:"data"`
		}
		if code := apiCall(t, a, "GET", "/vault/audit?limit=1000&outcome=budget_hit&key_id="+k.KeyID, nil, &page); code != http.StatusOK {
			t.Fatalf("audit: %d", code)
		}
		for _, c := range page.Data {
			if c.Outcome != "budget_hit" || c.StatusCode != 429 {
				t.Fatalf("audit row %+v", c)
			}
			hits += c.Count // a record counts its key's budget hits of the minute
		}
	}
	if hits != charges-budget {
		t.Fatalf("audit shows %d budget hits; want %d", hits, charges-budget)
	}
}

// TestPatchAndRunRevocationAcrossNodes: a key's allowlist narrowed by
// PATCH on node A is enforced by node B on its very next call (its cached
// key was dropped by the ledger's notification); a raised cap lets the next
// charge through; revoking the run on A refuses every key of it on B.
func TestPatchAndRunRevocationAcrossNodes(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	rec := newRecorder(t, env.stripeMock)
	a := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	b := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	req := map[string]any{"vendor": "stripe", "total_usd_cap": 5, "expires_in": "1h",
		"allowed_endpoints": []string{"POST /v1/payment_intents", "GET /v1/customers/*"}, "agent_run_label": "patch-run"}
	key := issueKey(t, a, req)
	other := issueKey(t, a, req)
	cb := stripeClient(b, key.VaultKey, "")

	// Node B has the key cached from these calls.
	if _, err := cb.V1Customers.Retrieve(t.Context(), "cus_1", nil); err != nil {
		t.Fatalf("GET customer before PATCH: %v", err)
	}
	if _, err := createPI(cb, 500, ""); err != nil {
		t.Fatalf("charge before PATCH: %v", err)
	}
	stripeErr(t, func() error { _, err := createPI(cb, 100, ""); return err }(), http.StatusTooManyRequests, "keybrake_cap_hit")

	body := map[string]any{"total_usd_cap": 6, "allowed_endpoints": []string{"POST /v1/payment_intents"}}
	if code := apiCall(t, a, "PATCH", "/vault/keys/"+key.KeyID, body, nil); code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	_, err := cb.V1Customers.Retrieve(t.Context(), "cus_1", nil)
	stripeErr(t, err, http.StatusForbidden, "keybrake_endpoint_denied")
	if _, err := createPI(cb, 100, ""); err != nil {
		t.Fatalf("charge after raising the cap: %v", err)
	}

	var rr struct {
		Revoked []string `json:"revoked"`
	}
	if code := apiCall(t, a, "DELETE", "/vault/keys?agent_run_label=patch-run", nil, &rr); code != http.StatusOK || len(rr.Revoked) != 2 {
		t.Fatalf("revoking the run: %d %+v", code, rr)
	}
	before := rec.total()
	for _, k := range []issuedKey{key, other} {
		_, err := createPI(stripeClient(b, k.VaultKey, ""), 100, "")
		stripeErr(t, err, http.StatusUnauthorized, "keybrake_key_revoked")
	}
	if rec.total() != before {
		t.Fatalf("a call reached Stripe after the run was revoked")
	}
}
