package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// approvalsOf lists the approvals of a key in a status, as an admin.
func approvalsOf(t *testing.T, n *node, keyID, status string) []approvalEntry {
	t.Helper()
	var out struct {
		Approvals []approvalEntry `json:"approvals"`
	}
	if code := apiCall(t, n, "GET", "/vault/approvals?status="+status+"&key_id="+keyID, nil, &out); code != http.StatusOK {
		t.Fatalf("GET /vault/approvals: %d", code)
	}
	return out.Approvals
}

type approvalEntry struct {
	ID             string  `json:"approval_id"`
	Status         string  `json:"status"`
	CallID         string  `json:"call_id"`
	DecidedBy      *string `json:"decided_by"`
	Reason         string  `json:"reason"`
	DecidedAfterMS *int64  `json:"decided_after_ms"`
	ConsumedBy     *string `json:"consumed_by"`
}

// awaitPending waits (bounded) until key has want pending approvals.
func awaitPending(t *testing.T, n *node, keyID string, want int) []approvalEntry {
	t.Helper()
	for range 600 {
		if list := approvalsOf(t, n, keyID, "pending"); len(list) >= want {
			return list
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("key %s never had %d pending approvals", keyID, want)
	return nil
}

// newToken creates a token of role as the bootstrap admin and returns its
// id and secret.
func newToken(t *testing.T, n *node, role string) (string, string) {
	t.Helper()
	var tk struct {
		TokenID string `json:"token_id"`
		Token   string `json:"token"`
	}
	if code := apiCall(t, n, "POST", "/vault/tokens", map[string]any{"name": "t-" + role, "role": role}, &tk); code != http.StatusCreated {
		t.Fatalf("creating %s token: %d", role, code)
	}
	return tk.TokenID, tk.Token
}

// approvalKey issues, with token, a refunds key of capUSD whose calls
// above aboveUSD wait up to wait for a person.
func approvalKey(t *testing.T, n *node, token string, capUSD, aboveUSD int, wait string) issuedKey {
	t.Helper()
	var k issuedKey
	req := map[string]any{"vendor": "stripe", "total_usd_cap": capUSD, "expires_in": "1h", "agent_run_label": "approvals",
		"allowed_endpoints": []string{"POST /v1/refunds"}, "approval": map[string]any{"above_usd": aboveUSD, "wait": wait}}
	if code := apiCallAs(t, n, token, "POST", "/vault/keys", req, &k); code != http.StatusCreated {
		t.Fatalf("issuing a key with approvals: %d", code)
	}
	return k
}

// refund asks stripe-mock (through Keybrake) to refund cents of ch_approvals.
func refund(c *stripe.Client, cents int64) (*stripe.Refund, error) {
	return c.V1Refunds.Create(context.Background(), &stripe.RefundCreateParams{
		Charge: stripe.String("ch_approvals"), Amount: stripe.Int64(cents),
	})
}

// decideAs posts a decision and returns the status.
func decideAs(t *testing.T, n *node, token, id, verb, reason string) int {
	t.Helper()
	return apiCallAs(t, n, token, "POST", "/vault/approvals/"+id+"/"+verb, map[string]any{"reason": reason}, nil)
}

// TestApprovalsStripeSDK: stripe-go through Keybrake on stripe-mock. A $60
// refund on a key with above_usd 50 blocks until a person approves it (the
// SDK's own call returns the refund); a denied one raises
// keybrake_approval_denied; an undecided one raises
// keybrake_approval_pending, not retried by the SDK, and after a later
// approval the same call goes through once. The key's issuer cannot
// approve; an approver cannot issue keys.
func TestApprovalsStripeSDK(t *testing.T) {
	need(t, false)
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	_, issuer := newToken(t, n, "issuer")
	approverID, approver := newToken(t, n, "approver")

	// An approver cannot issue keys.
	if code := apiCallAs(t, n, approver, "POST", "/vault/keys", map[string]any{"vendor": "stripe", "total_usd_cap": 10}, nil); code != http.StatusForbidden {
		t.Fatalf("approver issuing a key: %d; want 403", code)
	}
	issue := func(wait string) issuedKey { return approvalKey(t, n, issuer, 1000, 50, wait) }

	// Approved while held.
	k := issue("30s")
	c := stripeClient(n, k.VaultKey, "")
	type result struct {
		r   *stripe.Refund
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() { r, err := refund(c, 6000); done <- result{r, err, time.Now()} }()
	a := awaitPending(t, n, k.KeyID, 1)[0]
	if got := getKey(t, n, k.KeyID); got.Reserved.String() != "60" {
		t.Errorf("reserved while held = %s; want 60", got.Reserved)
	}
	if rec.count("POST", "/v1/refunds") != 0 {
		t.Fatal("a held refund reached Stripe")
	}
	time.Sleep(2 * time.Second) // a person reads the request
	if code := decideAs(t, n, issuer, a.ID, "approve", "self"); code != http.StatusForbidden {
		t.Fatalf("the key's issuer approving: %d; want 403", code)
	}
	if code := decideAs(t, n, approver, a.ID, "approve", "refund checked"); code != http.StatusOK {
		t.Fatalf("approving: %d", code)
	}
	approvedAt := time.Now()
	res := <-done
	if res.err != nil || res.r == nil || res.r.ID == "" {
		t.Fatalf("approved refund: %v", res.err)
	}
	t.Logf("approved call returned %s after the approval answered", res.at.Sub(approvedAt))
	if rec.count("POST", "/v1/refunds") != 1 {
		t.Fatalf("refunds at Stripe = %d; want 1", rec.count("POST", "/v1/refunds"))
	}
	if got := approvalsOf(t, n, k.KeyID, "consumed"); len(got) != 1 || got[0].ConsumedBy == nil || got[0].DecidedBy == nil ||
		got[0].Reason != "refund checked" || got[0].DecidedAfterMS == nil {
		t.Fatalf("consumed approvals = %+v", got)
	}

	// Denied.
	go func() { r, err := refund(c, 7000); done <- result{r, err, time.Now()} }()
	a = awaitPending(t, n, k.KeyID, 1)[0]
	if code := decideAs(t, n, approver, a.ID, "deny", "too much"); code != http.StatusOK {
		t.Fatalf("denying: %d", code)
	}
	res = <-done
	se := stripeErr(t, res.err, http.StatusForbidden, "keybrake_approval_denied")
	if se.LastResponse.Header.Get("X-Keybrake-Approval-Id") != a.ID {
		t.Errorf("denied refusal names approval %q; want %s", se.LastResponse.Header.Get("X-Keybrake-Approval-Id"), a.ID)
	}
	if rec.count("POST", "/v1/refunds") != 1 {
		t.Fatal("a denied refund reached Stripe")
	}

	// The audit shows who decided, why, and how long each call was held.
	var page struct {
		Data []struct {
			Outcome  string `json:"outcome"`
			Approval *struct {
				Status    string  `json:"status"`
				DecidedBy *string `json:"decided_by"`
				Reason    string  `json:"reason"`
				HeldMS    int64   `json:"held_ms"`
			} `json:"approval"`
		} `json:"data"`
	}
	if code := apiCall(t, n, "GET", "/vault/audit?key_id="+k.KeyID, nil, &page); code != http.StatusOK || len(page.Data) != 2 {
		t.Fatalf("audit: %d %+v", code, page)
	}
	for i, want := range []struct{ outcome, status, reason string }{
		{"forwarded", "consumed", "refund checked"}, {"approval_denied", "denied", "too much"},
	} {
		c := page.Data[i]
		if c.Outcome != want.outcome || c.Approval == nil || c.Approval.Status != want.status || c.Approval.Reason != want.reason ||
			c.Approval.DecidedBy == nil || *c.Approval.DecidedBy != approverID || c.Approval.HeldMS <= 0 {
			t.Errorf("audited call %d: %+v %+v; want %+v decided by %s", i, c, c.Approval, want, approverID)
		}
	}

	// Undecided: pending, not retried by the SDK; approved later, the same
	// call retried once goes through, a second retry does not.
	k2 := issue("1s")
	c2 := stripeClient(n, k2.VaultKey, "")
	_, err := refund(c2, 6000)
	se = stripeErr(t, err, http.StatusForbidden, "keybrake_approval_pending")
	id := se.LastResponse.Header.Get("X-Keybrake-Approval-Id")
	if pending := approvalsOf(t, n, k2.KeyID, "pending"); len(pending) != 1 || pending[0].ID != id {
		t.Fatalf("after one undecided call: pending %+v (the SDK retried?); header %q", pending, id)
	}
	if got := getKey(t, n, k2.KeyID); got.Reserved.String() != "0" {
		t.Errorf("reserved after the pending refusal = %s", got.Reserved)
	}
	if code := decideAs(t, n, approver, id, "approve", "later"); code != http.StatusOK {
		t.Fatalf("approving later: %d", code)
	}
	if r, err := refund(c2, 6000); err != nil || r.ID == "" {
		t.Fatalf("retry after approval: %v", err)
	}
	_, err = refund(c2, 6000)
	stripeErr(t, err, http.StatusForbidden, "keybrake_approval_pending")
	if rec.count("POST", "/v1/refunds") != 2 {
		t.Fatalf("refunds at Stripe = %d; want 2", rec.count("POST", "/v1/refunds"))
	}
	// A refund under the threshold never waits.
	if _, err := refund(c2, 4000); err != nil {
		t.Fatalf("refund under the threshold: %v", err)
	}
}

// TestApprovalsHoldTheCap: while 20 calls of $5 wait for approval on a
// $100 key, the cap counts their reservations: another call is a cap hit.
// Denied, they give it all back.
func TestApprovalsHoldTheCap(t *testing.T) {
	need(t, false)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	_, approver := newToken(t, n, "approver")
	k := approvalKey(t, n, apiToken, 100, 1, "60s")
	c := stripeClient(n, k.VaultKey, "")
	const held = 20
	var wg sync.WaitGroup
	errs := make(chan error, held)
	for range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := refund(c, 500)
			errs <- err
		}()
	}
	pending := awaitPending(t, n, k.KeyID, held)
	if got := getKey(t, n, k.KeyID); got.Reserved.String() != "100" || got.Remaining.String() != "0" {
		t.Fatalf("while %d calls wait: reserved %s remaining %s; want 100 and 0", held, got.Reserved, got.Remaining)
	}
	_, err := refund(c, 500)
	stripeErr(t, err, http.StatusTooManyRequests, "keybrake_cap_hit")
	for _, a := range pending {
		if code := decideAs(t, n, approver, a.ID, "deny", "batch"); code != http.StatusOK {
			t.Fatalf("denying %s: %d", a.ID, code)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		var se *stripe.Error
		if !errors.As(err, &se) || se.Code != "keybrake_approval_denied" {
			t.Fatalf("held call after denial: %v", err)
		}
	}
	if got := getKey(t, n, k.KeyID); got.Reserved.String() != "0" {
		t.Fatalf("reserved after the denials = %s", got.Reserved)
	}
}

// TestApprovalsAcrossNodes: two nodes on one Postgres; the call waits on
// node A, the approval is posted to node B, node A forwards. The latency
// from B's answer to the SDK's is measured and logged, not asserted.
func TestApprovalsAcrossNodes(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	a := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	b := startNode(t, nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	_, approver := newToken(t, b, "approver")
	k := approvalKey(t, a, apiToken, 1000, 50, "30s")
	c := stripeClient(a, k.VaultKey, "")
	var latencies []time.Duration
	for i := range 5 {
		done := make(chan error, 1)
		var returned time.Time
		go func() { _, err := refund(c, int64(6000+i)); returned = time.Now(); done <- err }()
		ap := awaitPending(t, b, k.KeyID, 1)[0]
		posted := time.Now()
		if code := decideAs(t, b, approver, ap.ID, "approve", fmt.Sprintf("round %d", i)); code != http.StatusOK {
			t.Fatalf("approving on node B: %d", code)
		}
		if err := <-done; err != nil {
			t.Fatalf("approved on B, the call on A: %v", err)
		}
		latencies = append(latencies, returned.Sub(posted))
	}
	t.Logf("approval posted to node B -> the SDK's call on node A returned (forwarded to stripe-mock and answered): %v", latencies)
}

// TestApprovalsShutdownAndKill: stopping a node answers the call it holds
// with keybrake_approval_pending at once (not at the end of its wait); a
// node killed while holding loses nothing: the approval stays and, approved
// later, lets the same request through another node once.
func TestApprovalsShutdownAndKill(t *testing.T) {
	need(t, false)
	ledgerDSN := sqliteLedger(t)
	start := func() *node {
		return startNode(t, nodeConfig{ledger: ledgerDSN, env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	}
	n := start()
	_, approver := newToken(t, n, "approver")
	k := approvalKey(t, n, apiToken, 1000, 50, "60s")

	// SIGTERM while holding: answered pending.
	done := make(chan error, 1)
	go func() { _, err := refund(stripeClient(n, k.VaultKey, ""), 6000); done <- err }()
	awaitPending(t, n, k.KeyID, 1)
	n.stop()
	stripeErr(t, <-done, http.StatusForbidden, "keybrake_approval_pending")

	// SIGKILL while holding: the client sees the node die; the approval
	// stays pending on the ledger.
	n = start()
	go func() { _, err := refund(stripeClient(n, k.VaultKey, ""), 6100); done <- err }()
	before := len(awaitPending(t, n, k.KeyID, 2))
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("a call held by a killed node succeeded")
	}
	n = start()
	pending := approvalsOf(t, n, k.KeyID, "pending")
	if len(pending) != before {
		t.Fatalf("after the kill: %d pending approvals; want %d", len(pending), before)
	}
	// The newest is the killed node's; approved, the same request goes
	// through once.
	if code := decideAs(t, n, approver, pending[0].ID, "approve", "after the crash"); code != http.StatusOK {
		t.Fatalf("approving: %d", code)
	}
	c := stripeClient(n, k.VaultKey, "")
	if _, err := refund(c, 6100); err != nil {
		t.Fatalf("retry after the approval: %v", err)
	}
}

// TestApprovalsWebhooks: a call held for approval sends approval.requested
// with the dashboard's link, its denial approval.decided, both signed,
// through a real node's outbox.
func TestApprovalsWebhooks(t *testing.T) {
	need(t, false)
	rc := newHookReceiver(t)
	url := rc.serve(t, "127.0.0.1:0")
	n := startNode(t, nodeConfig{caddyfile: webhookCaddyfile(t), ledger: sqliteLedger(t), env: map[string]string{
		"STRIPE_API_BASE": env.stripeMock, "KEYBRAKE_WEBHOOK_URL": url, "KEYBRAKE_WEBHOOK_SECRET": webhookSecret,
	}})
	_, approver := newToken(t, n, "approver")
	k := approvalKey(t, n, apiToken, 1000, 50, "30s")
	done := make(chan error, 1)
	go func() { _, err := refund(stripeClient(n, k.VaultKey, ""), 6000); done <- err }()
	a := awaitPending(t, n, k.KeyID, 1)[0]
	if code := decideAs(t, n, approver, a.ID, "deny", "not today"); code != http.StatusOK {
		t.Fatalf("denying: %d", code)
	}
	stripeErr(t, <-done, http.StatusForbidden, "keybrake_approval_denied")
	got := rc.await(t, "approval.requested", "approval.decided")
	req := got["approval.requested"]["data"].(map[string]any)
	if req["approval_id"] != a.ID || req["key_id"] != k.KeyID || req["estimate_usd"] != 60.0 ||
		req["url"] != "/vault/ui/#approvals" || req["path"] != "/v1/refunds" {
		t.Errorf("approval.requested data: %v", req)
	}
	if d := got["approval.decided"]["data"].(map[string]any); d["status"] != "denied" || d["reason"] != "not today" {
		t.Errorf("approval.decided data: %v", d)
	}
}

// TestApprovalsPatchedRule: PATCH of a key's approval rule holds from the
// next call on the node that took it (SQLite), and on another node (two
// nodes on one Postgres) once the ledger's notification has reached it. A $20 refund goes through under
// above_usd 50; the issuer lowers it to 10 and the same refund waits for a
// person (keybrake_approval_pending when nobody decides); the issuer cannot
// raise it again; an admin removes the rule and the refund goes through.
func TestApprovalsPatchedRule(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			need(t, kind == "postgres")
			dsn := ledgerOfKind(t, kind)
			cfg := nodeConfig{ledger: dsn, env: map[string]string{"STRIPE_API_BASE": env.stripeMock}}
			calls := startNode(t, cfg)
			admin := calls
			if kind == "postgres" {
				admin = startNode(t, cfg) // the PATCH goes to the other node
			}
			_, issuer := newToken(t, admin, "issuer")
			k := approvalKey(t, admin, issuer, 1000, 50, "1s")
			c := stripeClient(calls, k.VaultKey, "")
			if _, err := refund(c, 2000); err != nil {
				t.Fatalf("a $20 refund under above_usd 50: %v", err)
			}
			patch := func(token string, approval any) int {
				return apiCallAs(t, admin, token, "PATCH", "/vault/keys/"+k.KeyID, map[string]any{"approval": approval}, nil)
			}
			if code := patch(issuer, map[string]any{"above_usd": 10, "wait": "1s"}); code != http.StatusOK {
				t.Fatalf("issuer lowering above_usd: %d", code)
			}
			// The node that took the PATCH holds the next call; another
			// one as soon as the ledger's notification reaches its key
			// cache (at most the cache's TTL, 5 s).
			var err error
			deadline := time.Now().Add(6 * time.Second)
			for early := 0; ; early++ {
				if _, err = refund(c, 2000); err != nil || time.Now().After(deadline) {
					t.Logf("%d refunds went through before the other node saw the PATCH", early)
					break
				}
				if kind == "sqlite" {
					t.Fatal("a $20 refund went through after the rule was lowered to $10 on the same node")
				}
			}
			stripeErr(t, err, http.StatusForbidden, "keybrake_approval_pending")
			if got := approvalsOf(t, admin, k.KeyID, "pending"); len(got) != 1 {
				t.Fatalf("%d approvals recorded; want 1", len(got))
			}
			if code := patch(issuer, map[string]any{"above_usd": 100}); code != http.StatusForbidden {
				t.Fatalf("issuer raising above_usd: %d; want 403", code)
			}
			if code := patch(apiToken, nil); code != http.StatusOK {
				t.Fatalf("admin removing the rule: %d", code)
			}
			deadline = time.Now().Add(6 * time.Second)
			for {
				_, err = refund(c, 2000)
				if err == nil || kind == "sqlite" || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("a $20 refund without a rule: %v", err)
			}
		})
	}
}
