package integration

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
	"github.com/chromedp/chromedp/kb"
)

// TestDashboard drives /vault/ui in headless Chromium against the real
// binary: sign in with the API token, watch a run's bar follow a fan-out of
// charges live, revoke the key with the button, and see the next proxied
// call refused.
func TestDashboard(t *testing.T) {
	need(t, false)
	chromium := needBrowser(t)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	const run = "ui-e2e"
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     10,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label":   run,
	})
	// charge runs a fan-out of $0.75 PaymentIntents in the background.
	charge := func(count int) *sync.WaitGroup {
		var wg sync.WaitGroup
		for range count {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = createPI(stripeClient(n, key.VaultKey, ""), 75, "")
			}()
		}
		return &wg
	}

	b := newBrowser(t, chromium, 3*time.Minute)
	// Sign in from the keyboard alone: Tab to the labelled field, type,
	// Enter.
	b.do(t, "open", chromedp.Navigate(n.url+"/vault/ui"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.checkAccessible(t, "sign-in page")
	b.tabTo(t, "#token")
	b.do(t, "sign in",
		chromedp.KeyEvent(apiToken),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#overview")),
	)
	runBar := css(`#runs li[data-run=%q] [role=progressbar]`, run)
	b.do(t, "see the run", chromedp.WaitVisible(chromedp.CSS(runBar)))
	b.waitAttr(t, runBar, "aria-valuenow", "0")

	// First wave: 4 charges, $3 of $10. The page follows without a reload.
	charge(4).Wait()
	b.waitAttr(t, runBar, "aria-valuenow", "30")
	// Second wave, running while the page polls: 20 more, of which 9 fit
	// ($9.75 = 97.5%). Every value the bar shows on the way is a whole
	// number of $0.75 charges (spent + reserved), never over the cap.
	wave := charge(20)
	seen := b.waitAttr(t, runBar, "aria-valuenow", "97.5")
	wave.Wait()
	for _, v := range seen {
		pct, err := strconv.ParseFloat(v, 64)
		if err != nil || pct > 100 || int(pct*10)%75 != 0 {
			t.Errorf("bar showed %q: not a whole number of $0.75 charges against $10", v)
		}
	}
	width := b.eval(t, `document.querySelector(`+strconv.Quote(runBar+" .fill")+`).style.width`)
	text := b.attr(t, runBar, "aria-valuetext")
	if width != "97.5%" || text != "$9.75 of $10.00 (97.5%)" {
		t.Errorf("bar width %q, text %q; want 97.5%% and $9.75 of $10.00", width, text)
	}
	// Today's figures count the cap hits of the wave: 24 calls, 11 refused.
	b.waitText(t, "#today-cap-hits", "11")
	b.checkAccessible(t, "overview")
	b.screenshot(t, "dashboard-overview")

	// The run's page: its key at the same fraction, its calls linked to the
	// Stripe dashboard, and the revoke button.
	keyBar := css(`#run-keys li[data-key=%q] [role=progressbar]`, key.KeyID)
	b.do(t, "open the run",
		chromedp.Click(chromedp.CSS(css(`#runs li[data-run=%q] a`, run))),
		chromedp.WaitVisible(chromedp.CSS(keyBar)),
	)
	b.waitAttr(t, keyBar, "aria-valuenow", "97.5")
	b.do(t, "a transaction link",
		chromedp.WaitVisible(chromedp.CSS(`#calls tbody a[href^="https://dashboard.stripe.com/payments/pi_"]`)))
	b.do(t, "revoke with the button",
		chromedp.Click(chromedp.CSS(css(`#run-keys li[data-key=%q] button[data-action=revoke]`, key.KeyID))),
		chromedp.Click(chromedp.CSS(css(`#run-keys li[data-key=%q] button[data-action=confirm-revoke]`, key.KeyID))),
		chromedp.WaitVisible(chromedp.CSS(css(`#run-keys li[data-key=%q] .badge.revoked`, key.KeyID))),
	)
	b.checkAccessible(t, "run page")
	b.screenshot(t, "dashboard-run-revoked")
	// Refusal reasons in words (the codes stay in the CSV and the API).
	b.waitText(t, `#run-refusals li[data-outcome="cap_hit"]`, "Cap reached: 11")

	// The finished run stays on the overview, among recent runs, with its
	// status, when it stopped and its allowlist; the search box finds it.
	b.do(t, "back to the overview", chromedp.Navigate(n.url+"/vault/ui#/"),
		chromedp.WaitVisible(chromedp.CSS(css(`#runs li[data-run=%q][data-status="revoked"]`, run))))
	meta := b.eval(t, `document.querySelector(`+strconv.Quote(css(`#runs li[data-run=%q] .meta`, run))+`).textContent`)
	if !strings.Contains(meta, "revoked ") || !strings.Contains(meta, "POST /v1/payment_intents") {
		t.Errorf("the finished run's line says %q; want when it was revoked and its allowlist", meta)
	}
	b.do(t, "search for another run", chromedp.SendKeys(chromedp.CSS("#run-search"), "no-such-run"),
		chromedp.WaitNotPresent(chromedp.CSS(css(`#runs li[data-run=%q]`, run))), chromedp.WaitVisible(chromedp.CSS("#runs-empty")))
	b.do(t, "search for this run", chromedp.SendKeys(chromedp.CSS("#run-search"), strings.Repeat(kb.Backspace, len("no-such-run"))+"ui-e"),
		chromedp.WaitVisible(chromedp.CSS(css(`#runs li[data-run=%q]`, run))))
	b.screenshot(t, "dashboard-recent-runs")
	b.do(t, "back to the run", chromedp.Navigate(n.url+"/vault/ui#/run/"+run), chromedp.WaitVisible(chromedp.CSS(keyBar)))

	// The next proxied call with the key is refused.
	_, err := createPI(stripeClient(n, key.VaultKey, ""), 75, "")
	stripeErr(t, err, http.StatusUnauthorized, "keybrake_key_revoked")

	// Readable on a phone: the same page at a phone's size.
	b.do(t, "phone", chromedp.Emulate(device.IPhone13), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(keyBar)))
	b.checkAccessible(t, "run page on a phone")
	b.screenshot(t, "dashboard-run-phone")
	b.do(t, "overview on a phone", chromedp.Navigate(n.url+"/vault/ui#/"), chromedp.WaitVisible(chromedp.CSS("#today-stats dd")))
	b.checkAccessible(t, "overview on a phone")
	b.screenshot(t, "dashboard-overview-phone")
	b.checkClean(t)
}
