package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestNoUpstreamAddressInAnswers: with Stripe's upstream down, a call that
// Keybrake prices by looking the object up at Stripe (a confirm of an
// intent made elsewhere, a refund of a charge), and a call it forwards,
// are refused in Stripe's format without a word of where the upstream is:
// Go's client errors name the URL and the address dialled.
func TestNoUpstreamAddressInAnswers(t *testing.T) {
	need(t, false)
	port := strconv.Itoa(freePort()) // nothing listens there
	upstream := "http://127.0.0.1:" + port
	caddyfile := writeCaddyfile(t, fmt.Sprintf(`		vendor stripe {
			secret_key %s
			upstream %s
		}`, simStripeSecret, upstream), fmt.Sprintf(`	handle /v1/* {
		keybrake stripe
		reverse_proxy %s
	}`, upstream))
	n := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: sqliteLedger(t)})
	key := issueKey(t, n, map[string]any{"vendor": "stripe", "total_usd_cap": 100, "allowed_endpoints": stripeAll})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/payment_intents/pi_abc/confirm", ""},
		{"POST", "/v1/payment_intents/pi_abc/capture", form("amount_to_capture", "100")},
		{"POST", "/v1/payment_intents/pi_abc", form("amount", "500")},
		{"POST", "/v1/refunds", form("charge", "ch_abc")},
		{"POST", "/v1/payment_intents", form("amount", "500", "currency", "usd")},
		{"GET", "/v1/customers/cus_abc", ""},
	} {
		status, h, env := rawStripe(t, n, c.method, c.path, "Bearer "+key.VaultKey, c.body)
		if status < 400 || env.Error == nil {
			t.Errorf("%s %s: %d %s; want a refusal in Stripe's format", c.method, c.path, status, env.raw)
		}
		for _, leak := range []string{"127.0.0.1", port, "dial tcp", "connection refused"} {
			if strings.Contains(env.raw, leak) || strings.Contains(fmt.Sprint(h), leak) {
				t.Errorf("%s %s: the answer names the upstream (%q): %s", c.method, c.path, leak, env.raw)
			}
		}
		t.Logf("%s %s: %d %s", c.method, c.path, status, env.raw)
	}
}
