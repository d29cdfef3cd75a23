package integration

import (
	"net/http"
	"testing"
)

// TestBudgetWebhooks: keys of one issuer token spend its $10 budget through
// a real node; budget.threshold arrives once at 50% and once at 80%, signed,
// with the token's spend across both keys.
func TestBudgetWebhooks(t *testing.T) {
	need(t, false)
	rc := newHookReceiver(t)
	url := rc.serve(t, "127.0.0.1:0")
	n := startNode(t, nodeConfig{caddyfile: webhookCaddyfile(t), ledger: sqliteLedger(t), env: map[string]string{
		"STRIPE_API_BASE": env.stripeMock, "KEYBRAKE_WEBHOOK_URL": url, "KEYBRAKE_WEBHOOK_SECRET": webhookSecret,
	}})
	tokenID, token := issuerToken(t, n, map[string]any{"vendors": []string{"stripe"}, "total_usd_cap": 10})
	var keys []issuedKey
	for _, label := range []string{"budget-hooks-a", "budget-hooks-b"} {
		var k issuedKey
		req := map[string]any{"vendor": "stripe", "total_usd_cap": 100, "expires_in": "1h",
			"allowed_endpoints": []string{"POST /v1/payment_intents"}, "agent_run_label": label}
		if code := apiCallAs(t, n, token, "POST", "/vault/keys", req, &k); code != http.StatusCreated {
			t.Fatalf("issuing %s as the issuer: %d", label, code)
		}
		keys = append(keys, k)
	}
	// $3 on a, $3 on b ($6: 50% crossed), $3 on a ($9: 80% crossed); each
	// key alone stays far below its own $100 cap.
	for i, k := range []issuedKey{keys[0], keys[1], keys[0]} {
		if _, err := createPI(stripeClient(n, k.VaultKey, ""), 300, ""); err != nil {
			t.Fatalf("charge %d: %v", i+1, err)
		}
	}
	got := rc.await(t, "budget.threshold:50", "budget.threshold:80")
	d := got["budget.threshold:80"]["data"].(map[string]any)
	if d["token_id"] != tokenID || d["token_name"] != "windmill-prod" || d["budget"] != "total" ||
		d["cap_usd"] != 10.0 || d["spent_usd"] != 9.0 {
		t.Errorf("budget.threshold 80%% data: %v", d)
	}
	if d := got["budget.threshold:50"]["data"].(map[string]any); d["spent_usd"] != 6.0 {
		t.Errorf("budget.threshold 50%% data: %v", d)
	}
}
