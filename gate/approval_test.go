package gate

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

const okCharge = `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`

// newApprovalFixture is a gate whose key asks a person about calls above
// $2 (every $5 charge), waiting up to wait.
func newApprovalFixture(t *testing.T, wait time.Duration) (*gtFixture, ledger.ApprovalStore) {
	t.Helper()
	f := newGTFixture(t, "100")
	as := f.store.(ledger.ApprovalStore)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.gate.cfg.Approvals = NewApprovals(as, nil, nil)
	go f.gate.cfg.Approvals.Run(ctx)
	// A fresh key with the rule: the cache has not seen it.
	f.key.ID, f.secret = "vkGateApproval00000000", "kbGateApprovalSecret000000000000000000"
	f.key.Hash = ledger.HashSecret(f.secret)
	f.key.Approval = &ledger.ApprovalRule{Above: 2 * money.PerDollar, Wait: wait, TTL: time.Hour}
	if err := f.store.CreateKey(context.Background(), f.key); err != nil {
		t.Fatal(err)
	}
	return f, as
}

// pendingApproval waits (bounded) until the key has a pending approval and
// returns it.
func pendingApproval(t *testing.T, f *gtFixture, as ledger.ApprovalStore) ledger.Approval {
	t.Helper()
	for range 500 {
		list, err := as.ListApprovals(context.Background(), ledger.ApprovalFilter{Status: ledger.ApprovalPending, KeyID: f.key.ID, Now: f.now})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			return list[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no pending approval appeared")
	return ledger.Approval{}
}

func decide(t *testing.T, f *gtFixture, as ledger.ApprovalStore, id string, approve bool) {
	t.Helper()
	if _, err := as.DecideApproval(context.Background(), id, ledger.ApprovalDecision{Approve: approve, By: "tkBoss", Reason: "checked", Now: f.now}); err != nil {
		t.Fatal(err)
	}
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return body.Error.Code
}

func TestApprovalApprovedWhileHeld(t *testing.T) {
	f, as := newApprovalFixture(t, time.Minute)
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() { got <- f.charge(answer(200, okCharge), "") }()
	a := pendingApproval(t, f, as)
	// While it waits, the cap counts its reservation.
	if u := f.usage(); u.Reserved != 5*money.PerDollar {
		t.Fatalf("reserved while held = %s; want 5", u.Reserved.Dollars())
	}
	if a.Estimate != 5*money.PerDollar || a.Method != "POST" || a.Path != "/v1/payment_intents" || a.RequestHash == "" {
		t.Fatalf("approval = %+v", a)
	}
	decide(t, f, as, a.ID, true)
	w := <-got
	if w.Code != 200 {
		t.Fatalf("approved call: %d %s", w.Code, w.Body)
	}
	a, _ = as.GetApproval(context.Background(), a.ID)
	if a.Status != ledger.ApprovalConsumed || a.ConsumedBy != w.Header().Get(HeaderCallID) || a.CallID != a.ConsumedBy {
		t.Fatalf("approval after the call = %+v", a)
	}
	if c := f.lastCall(); c.CostState != ledger.CostSettled || c.Cost != 5*money.PerDollar {
		t.Fatalf("call = %+v", c)
	}
}

func TestApprovalDenied(t *testing.T) {
	f, as := newApprovalFixture(t, time.Minute)
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() { got <- f.charge(answer(500, "next must not be called"), "") }()
	a := pendingApproval(t, f, as)
	decide(t, f, as, a.ID, false)
	w := <-got
	if w.Code != 403 || errorCode(t, w) != "keybrake_approval_denied" || w.Header().Get(HeaderApprovalID) != a.ID ||
		w.Header().Get("Stripe-Should-Retry") != "false" {
		t.Fatalf("denied call: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if u := f.usage(); u.Reserved != 0 || u.Spent != 0 {
		t.Fatalf("after a denial: reserved %s spent %s", u.Reserved.Dollars(), u.Spent.Dollars())
	}
	if c := f.lastCall(); c.Outcome != ledger.OutcomeApprovalDenied || c.CostState != ledger.CostReleased || c.StatusCode != 403 {
		t.Fatalf("call = %+v", c)
	}
}

// TestApprovalPendingThenRetry: undecided in time, the call is refused;
// approved later, one retry of the same request goes through and a
// second does not.
func TestApprovalPendingThenRetry(t *testing.T) {
	f, as := newApprovalFixture(t, 20*time.Millisecond)
	w := f.charge(answer(500, "next must not be called"), "")
	id := w.Header().Get(HeaderApprovalID)
	if w.Code != 403 || errorCode(t, w) != "keybrake_approval_pending" || id == "" || w.Header().Get("Stripe-Should-Retry") != "false" {
		t.Fatalf("undecided call: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if u := f.usage(); u.Reserved != 0 {
		t.Fatalf("reserved after the pending refusal = %s", u.Reserved.Dollars())
	}
	if c := f.lastCall(); c.Outcome != ledger.OutcomeApprovalPending || c.CostState != ledger.CostReleased {
		t.Fatalf("call = %+v", c)
	}
	decide(t, f, as, id, true)
	if w := f.charge(answer(200, okCharge), ""); w.Code != 200 {
		t.Fatalf("retry after approval: %d %s", w.Code, w.Body)
	}
	w = f.charge(answer(500, "next must not be called"), "")
	if w.Code != 403 || errorCode(t, w) != "keybrake_approval_pending" || w.Header().Get(HeaderApprovalID) == id {
		t.Fatalf("second retry: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// Another request (another body) never uses an approval.
	list, _ := as.ListApprovals(context.Background(), ledger.ApprovalFilter{KeyID: f.key.ID, Now: f.now})
	if len(list) != 2 {
		t.Fatalf("%d approvals; want 2", len(list))
	}
}

func TestApprovalShutdownAnswersHeld(t *testing.T) {
	f, as := newApprovalFixture(t, time.Minute)
	got := make(chan *httptest.ResponseRecorder, 1)
	go func() { got <- f.charge(answer(500, "next must not be called"), "") }()
	a := pendingApproval(t, f, as)
	f.gate.Shutdown()
	w := <-got
	if w.Code != 403 || errorCode(t, w) != "keybrake_approval_pending" || w.Header().Get(HeaderApprovalID) != a.ID {
		t.Fatalf("held call at shutdown: %d %s", w.Code, w.Body)
	}
	if u := f.usage(); u.Reserved != 0 {
		t.Fatalf("reserved after shutdown = %s", u.Reserved.Dollars())
	}
	if f.gate.cfg.Approvals.Holding() != 0 {
		t.Fatal("a waiter is left registered")
	}
}

func TestApprovalBelowThresholdGoesThrough(t *testing.T) {
	f, _ := newApprovalFixture(t, time.Minute)
	f.key.Approval.Above = 10 * money.PerDollar
	f.key.ID, f.secret = "vkGateApproval00000001", "kbGateApprovalSecret000000000000000001"
	f.key.Hash = ledger.HashSecret(f.secret)
	if err := f.store.CreateKey(context.Background(), f.key); err != nil {
		t.Fatal(err)
	}
	if w := f.charge(answer(200, okCharge), ""); w.Code != 200 {
		t.Fatalf("call below the threshold: %d %s", w.Code, w.Body)
	}
}
