package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/money"
)

// The cap holds on evidence (issue 17): a Stripe call whose client hangs up
// before the answer is kept unknown until Stripe shows what it did, through
// a consistent read (a list of the objects created in the call's window,
// matched by the tag Keybrake wrote), never through a search that lags; and
// a call Keybrake could not tag, or a tag the client could forge, move or
// remove, is refused before it reaches Stripe.

// hangingNode is a real Caddy node, its reconciler on short settings, in
// front of a simulated vendor behind a front that holds the answer to a
// POST hold picks until Caddy gives up on it: the vendor has acted, the
// client never hears of it. vendorBlock is the vendor's block less its
// upstream, route the path the vendor is served on.
func hangingNode(t *testing.T, ledgerDSN, name, vendorBlock, route string, h http.Handler, hold func(body url.Values) bool) *node {
	t.Helper()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if r.Method != http.MethodPost || !hold(form) {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		select {
		case <-r.Context().Done(): // the client left; Caddy dropped the request
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(front.Close)
	caddyfile := writeCaddyfile(t, fmt.Sprintf("\t\treconcile_interval 300ms\n\t\treconcile_not_found_after 1s\n"+
		"\t\tvendor %s {\n%s\n\t\t\tupstream %s\n\t\t}", name, vendorBlock, front.URL),
		fmt.Sprintf("\thandle %s {\n\t\tkeybrake %s\n\t\treverse_proxy %s\n\t}", route, name, front.URL))
	return startNode(t, nodeConfig{caddyfile: caddyfile, ledger: ledgerDSN})
}

// evidenceNode is hangingNode for the simulated Stripe (its search lagging
// its writes by the minute Stripe documents), holding the answer to a
// create whose description is "hangup".
func evidenceNode(t *testing.T, ledgerDSN string) (*node, *simvendor.Sim) {
	t.Helper()
	sim := newSim()
	n := hangingNode(t, ledgerDSN, "stripe", "\t\t\tsecret_key "+simStripeSecret, "/v1/*", sim.Stripe(),
		func(f url.Values) bool { return f.Get("description") == "hangup" })
	return n, sim
}

// hangUp sends a Stripe call and leaves before the answer (as curl -m does).
// It returns the status of an answer that came in time (a refusal), or 0.
func hangUp(t *testing.T, n *node, vaultKey, path, body string) (int, http.Header, stripeEnvelope) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+vaultKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Timeout: 700 * time.Millisecond}).Do(req)
	if err != nil {
		return 0, nil, stripeEnvelope{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	env := stripeEnvelope{raw: string(raw)}
	_ = json.Unmarshal(raw, &env)
	return resp.StatusCode, resp.Header, env
}

// settledDown waits, a few reconciler runs at most, for the key to hold no
// reservation: what the reconciler would release or settle, it has.
func settledDown(t *testing.T, n *node, keyID string) keyView {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		k := getKey(t, n, keyID)
		if k.Reserved.String() == "0" || time.Now().After(deadline) {
			return k
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func evidenceCharge(cents string, extra ...string) string {
	return form(append([]string{"amount", cents, "currency", "usd", "confirm", "true", "payment_method", "pm_card_visa"}, extra...)...)
}

func TestCapHoldsOnEvidence(t *testing.T) {
	need(t, false)
	n, sim := evidenceNode(t, sqliteLedger(t))
	clientKeys := func(k int) []string {
		var kv []string
		for i := range k {
			kv = append(kv, fmt.Sprintf("metadata[k%02d]", i), "v")
		}
		return kv
	}
	for _, tc := range []struct {
		name string
		// attack runs against a $10 key; refused is the code of the 400
		// its hang-up must get, "" when Keybrake forwards and tags it.
		body    string
		refused string
	}{
		{"tagged by Keybrake, search lagging", evidenceCharge("900", "description", "hangup"), ""},
		{"client's own keybrake_call_id", evidenceCharge("900", "description", "hangup", "metadata[keybrake_call_id]", "mine"), "keybrake_reserved_metadata"},
		{"client's own keybrake_run", evidenceCharge("900", "description", "hangup", "metadata[keybrake_run]", "mine"), "keybrake_reserved_metadata"},
		{"metadata= clears the map", evidenceCharge("900", "description", "hangup", "metadata", ""), "keybrake_metadata_cleared"},
		{"49 client keys leave no room", evidenceCharge("900", append([]string{"description", "hangup"}, clientKeys(49)...)...), "keybrake_metadata_full"},
		{"50 client keys leave no room", evidenceCharge("900", append([]string{"description", "hangup"}, clientKeys(50)...)...), "keybrake_metadata_full"},
		{"48 client keys leave room", evidenceCharge("900", append([]string{"description", "hangup"}, clientKeys(48)...)...), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim.Reset()
			label := "evidence/" + randAlnum(6)
			key := issueKey(t, n, map[string]any{"vendor": "stripe", "total_usd_cap": 10, "agent_run_label": label,
				"allowed_endpoints": stripeAll})
			status, h, env := hangUp(t, n, key.VaultKey, "/v1/payment_intents", tc.body)
			if tc.refused != "" {
				wantStripeError(t, "the hang-up", status, h, env, http.StatusBadRequest, tc.refused)
				if env.Error != nil && env.Error.Type != "invalid_request_error" {
					t.Errorf("error type %q; want invalid_request_error", env.Error.Type)
				}
			} else if status != 0 {
				t.Fatalf("the hang-up got an answer in time: %d %s", status, env.raw)
			}
			k := settledDown(t, n, key.KeyID)
			// Then the same again, answered this time: it must not pass
			// on money the reconciler gave back without evidence.
			status, _, env = rawStripe(t, n, "POST", "/v1/payment_intents", "Bearer "+key.VaultKey, evidenceCharge("900"))
			moved := money.Micros(sim.Moved(simvendor.VendorStripe))
			if moved > 10*money.PerDollar {
				t.Fatalf("Stripe moved %s on a $10 key (second charge %d %s)", moved, status, env.raw)
			}
			after := getKey(t, n, key.KeyID)
			spent, _ := money.ParseUSD(after.Spent.String())
			reserved, _ := money.ParseUSD(after.Reserved.String())
			if spent+reserved < moved {
				t.Fatalf("the ledger counts %s (spent %s, reserved %s); Stripe moved %s", spent+reserved, after.Spent, after.Reserved, moved)
			}
			if tc.refused == "" {
				// The hang-up was tagged: the reconciler found its intent by
				// listing, and settled it at $9, whatever search said.
				if k.Spent.String() != "9" || status != http.StatusTooManyRequests {
					t.Fatalf("after the hang-up spent %s reserved %s, second charge %d; want $9 settled and a cap hit", k.Spent, k.Reserved, status)
				}
				for _, c := range audit(t, n, label) {
					if c.Outcome == "client_gone" && (c.CostState != "settled" || c.ResolvedBy != "reconciler" || !strings.HasPrefix(c.VendorTxnID, "pi_")) {
						t.Fatalf("the hang-up's call: %+v; want settled by the reconciler at its intent", c)
					}
				}
			} else if status != http.StatusOK || moved != 9*money.PerDollar {
				t.Fatalf("after a refused hang-up: second charge %d, Stripe moved %s; want it to pass, $9", status, moved)
			}
			if p := sim.Problems(); len(p) > 0 {
				t.Errorf("the simulator could not referee: %v", p)
			}
		})
	}
}

// TestCapHoldsOnEvidenceTagTampering: the key holder reads the tag of a
// call that hung up (the intent's metadata, through a free GET) and tries
// to move it: off its own intent, onto a cheap one, or to empty the
// intent's metadata. Every attempt is refused before Stripe; the lost call
// is settled at what it moved.
func TestCapHoldsOnEvidenceTagTampering(t *testing.T) {
	need(t, false)
	n, sim := evidenceNode(t, sqliteLedger(t))
	label := "evidence/tamper"
	key := issueKey(t, n, map[string]any{"vendor": "stripe", "total_usd_cap": 10, "agent_run_label": label,
		"allowed_endpoints": stripeAll})
	auth := "Bearer " + key.VaultKey
	if status, _, env := hangUp(t, n, key.VaultKey, "/v1/payment_intents", evidenceCharge("900", "description", "hangup", "metadata[order]", "7")); status != 0 {
		t.Fatalf("the hang-up got an answer: %d %s", status, env.raw)
	}
	status, _, env := rawStripe(t, n, "GET", "/v1/payment_intents?limit=10", auth, "")
	var list struct {
		Data []struct {
			ID       string            `json:"id"`
			Metadata map[string]string `json:"metadata"`
		} `json:"data"`
	}
	if status != 200 || json.Unmarshal([]byte(env.raw), &list) != nil || len(list.Data) != 1 {
		t.Fatalf("listing intents: %d %s", status, env.raw)
	}
	pi, tag := list.Data[0].ID, list.Data[0].Metadata["keybrake_call_id"]
	if !strings.HasPrefix(tag, "kt") || list.Data[0].Metadata["keybrake_run"] != label {
		t.Errorf("the lost call's intent carries %v; want Keybrake's random tag and the run", list.Data[0].Metadata)
	}
	for _, a := range []struct{ what, path, body, code string }{
		{"unset the tag on the lost call's intent", "/v1/payment_intents/" + pi, form("metadata[keybrake_call_id]", ""), "keybrake_reserved_metadata"},
		{"retag the lost call's intent", "/v1/payment_intents/" + pi, form("metadata[keybrake_call_id]", "ktElsewhere"), "keybrake_reserved_metadata"},
		{"empty the lost call's intent's metadata", "/v1/payment_intents/" + pi, form("metadata", ""), "keybrake_metadata_cleared"},
		{"its tag on a cheap intent", "/v1/payment_intents", evidenceCharge("50", "metadata[keybrake_call_id]", tag), "keybrake_reserved_metadata"},
		{"its tag on a cheap charge", "/v1/charges", form("amount", "50", "currency", "usd", "source", "tok_visa", "metadata[keybrake_call_id]", tag), "keybrake_reserved_metadata"},
		// Refused as a second reading of the request (a POST's parameters
		// are read from its body only) before its metadata is looked at.
		{"its tag through the query", "/v1/payment_intents?metadata[keybrake_call_id]=" + tag, evidenceCharge("50"), "keybrake_ambiguous_request"},
	} {
		status, h, env := rawStripe(t, n, "POST", a.path, auth, a.body)
		wantStripeError(t, a.what, status, h, env, http.StatusBadRequest, a.code)
	}
	k := settledDown(t, n, key.KeyID)
	if k.Spent.String() != "9" || k.Reserved.String() != "0" {
		t.Fatalf("after reconciling: spent %s reserved %s; want the lost call settled at $9", k.Spent, k.Reserved)
	}
	status, _, _ = rawStripe(t, n, "POST", "/v1/payment_intents", auth, evidenceCharge("900"))
	if moved := sim.Moved(simvendor.VendorStripe); status != http.StatusTooManyRequests || moved != 9*int64(money.PerDollar) {
		t.Fatalf("second $9 charge: %d, Stripe moved %d; want a cap hit and $9", status, moved)
	}
}

// TestTwilioToForwardedAndRecordedAsPriced: a message to "%2B1555…+" (a
// trailing space once decoded) whose client hangs up after Twilio sent it.
// Keybrake priced the trimmed number; it forwards and records that number
// too, so the reconciler lists the message Twilio has and settles it,
// rather than listing a number no message went to and releasing it.
func TestTwilioToForwardedAndRecordedAsPriced(t *testing.T) {
	need(t, false)
	sim := newSim()
	n := hangingNode(t, sqliteLedger(t), "twilio", fmt.Sprintf("\t\t\taccount_sid %s\n\t\t\tauth_token %s", simTwilioSID, simTwilioToken),
		"/2010-04-01/*", sim.Twilio(), func(url.Values) bool { return true })
	key := issueKey(t, n, map[string]any{"vendor": "twilio", "total_usd_cap": 0.01, "agent_run_label": "twilio-to",
		"allowed_endpoints": []string{"POST /2010-04-01/Accounts/*/Messages.json"}})
	send := func(timeout time.Duration) int {
		req, _ := http.NewRequest("POST", n.url+"/2010-04-01/Accounts/"+twilioClientSID+"/Messages.json",
			strings.NewReader("To=%2B15551234567+&From=%2B15550009999&Body=hello"))
		req.SetBasicAuth(twilioClientSID, key.VaultKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := (&http.Client{Timeout: timeout}).Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := send(700 * time.Millisecond); status != 0 {
		t.Fatalf("the hang-up got an answer: %d", status)
	}
	calls := audit(t, n, "twilio-to")
	if len(calls) != 1 || !strings.HasSuffix(calls[0].Path, "?to=%2B15551234567") {
		t.Fatalf("recorded %+v; want the call with the trimmed To it was priced at", calls)
	}
	k := settledDown(t, n, key.KeyID)
	if k.Spent.String() != "0.0083" {
		t.Fatalf("after reconciling: spent %s reserved %s; want the sent message settled at $0.0083", k.Spent, k.Reserved)
	}
	// The $0.01 key cannot pay for a second message.
	if status := send(10 * time.Second); status != http.StatusTooManyRequests {
		t.Fatalf("second message: %d; want a cap hit", status)
	}
	if moved := sim.Moved(simvendor.VendorTwilio); moved != simvendor.DefaultSMSPrice {
		t.Fatalf("Twilio moved %d; want one message", moved)
	}
}
