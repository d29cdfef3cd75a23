package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestDashboardApprovesByKeyboard: a $60 refund waits for approval; an
// approver signs in to the dashboard, finds it in the live list, types a
// reason and approves it with the keyboard alone; the SDK's call returns
// the refund.
func TestDashboardApprovesByKeyboard(t *testing.T) {
	need(t, false)
	chromium := needBrowser(t)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	approverID, approver := newToken(t, n, "approver")
	key := issueKey(t, n, map[string]any{"vendor": "stripe", "total_usd_cap": 1000, "agent_run_label": "ui-approvals",
		"allowed_endpoints": []string{"POST /v1/refunds"}, "approval": map[string]any{"above_usd": 50, "wait": "60s"}})

	b := newBrowser(t, chromium, 2*time.Minute)
	b.do(t, "open", chromedp.Navigate(n.url+"/vault/ui"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.tabTo(t, "#token")
	b.do(t, "sign in", chromedp.KeyEvent(approver), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#overview")))
	b.do(t, "see the empty list", chromedp.WaitVisible(chromedp.CSS("#approvals-empty")))

	done := make(chan error, 1)
	go func() { _, err := refund(stripeClient(n, key.VaultKey, ""), 6000); done <- err }()
	a := awaitPending(t, n, key.KeyID, 1)[0]
	item := css(`#approvals-list li[data-approval=%q]`, a.ID)
	b.do(t, "see the waiting call", chromedp.WaitVisible(chromedp.CSS(item)))
	b.checkAccessible(t, "approvals")
	b.tabTo(t, "#reason-"+a.ID)
	b.do(t, "type a reason", chromedp.KeyEvent("checked by keyboard"), chromedp.KeyEvent(kb.Tab))
	if b.eval(t, `document.activeElement.getAttribute("data-action")||""`) != "approve" {
		t.Fatal("Tab from the reason does not reach Approve")
	}
	b.do(t, "approve", chromedp.KeyEvent(kb.Enter))
	if err := <-done; err != nil {
		t.Fatalf("the refund approved in the dashboard: %v", err)
	}
	b.do(t, "see it go", chromedp.WaitNotPresent(chromedp.CSS(item)))
	if s := b.eval(t, `document.getElementById("approvals-status").textContent`); !strings.HasPrefix(s, "Approved "+a.ID) {
		t.Errorf("status after approving: %q", s)
	}
	var got approvalEntry
	if code := apiCall(t, n, "GET", "/vault/approvals/"+a.ID, nil, &got); code != http.StatusOK || got.Status != "consumed" ||
		got.DecidedBy == nil || *got.DecidedBy != approverID || got.Reason != "checked by keyboard" {
		t.Fatalf("approval after the dashboard: %d %+v", code, got)
	}
	b.checkClean(t)
}
