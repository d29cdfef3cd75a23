package integration

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	twilio "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

const (
	twilioRealSID   = "AC00000000000000000000000000real01"
	twilioRealToken = "realTwilioAuthToken0001"
	// twilioClientSID is what the client uses as its account SID: Keybrake
	// ignores it and puts the real one in.
	twilioClientSID = "ACkeybrake"
)

// fakeTwilio answers like api.twilio.com for Messages: a create is 201
// with a new SM… sid and a null price; a fetch shows the message, priced
// once the test says Twilio has priced it.
type fakeTwilio struct {
	*recorder
	priced atomic.Bool
	mu     sync.Mutex
	msgs   map[string]map[string]string // sid -> fields
}

func newFakeTwilio(t *testing.T) *fakeTwilio {
	f := &fakeTwilio{msgs: map[string]map[string]string{}}
	f.recorder = newFakeVendor(t, f.serve)
	return f
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fail := func(status, code int, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, msg, code, status)
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != twilioRealSID || pass != twilioRealToken {
		fail(401, 20003, "Authenticate")
		return
	}
	prefix := "/2010-04-01/Accounts/" + twilioRealSID + "/"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		fail(404, 20404, "The requested resource was not found")
		return
	}
	switch {
	case r.Method == http.MethodPost && rest == "Messages.json":
		_ = r.ParseForm()
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		sid := "SM" + hex.EncodeToString(b)
		m := map[string]string{"to": r.PostForm.Get("To"), "from": r.PostForm.Get("From"), "body": r.PostForm.Get("Body")}
		f.mu.Lock()
		f.msgs[sid] = m
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(f.message(sid, m, "queued", false))
	case r.Method == http.MethodGet && strings.HasPrefix(rest, "Messages/") && strings.HasSuffix(rest, ".json"):
		sid := strings.TrimSuffix(strings.TrimPrefix(rest, "Messages/"), ".json")
		f.mu.Lock()
		m, ok := f.msgs[sid]
		f.mu.Unlock()
		if !ok {
			fail(404, 20404, "The requested resource was not found")
			return
		}
		_ = json.NewEncoder(w).Encode(f.message(sid, m, "delivered", f.priced.Load()))
	default:
		fail(404, 20404, "The requested resource was not found")
	}
}

// message is a Message resource as Twilio shows it.
func (f *fakeTwilio) message(sid string, m map[string]string, status string, priced bool) map[string]any {
	var price any
	if priced {
		price = "-0.00750"
	}
	return map[string]any{
		"sid": sid, "account_sid": twilioRealSID, "api_version": "2010-04-01",
		"to": m["to"], "from": m["from"], "body": m["body"], "status": status,
		"num_segments": "1", "num_media": "0", "direction": "outbound-api",
		"price": price, "price_unit": "USD", "error_code": nil, "error_message": nil,
		"uri": "/2010-04-01/Accounts/" + twilioRealSID + "/Messages/" + sid + ".json",
	}
}

// fetches returns the GETs of messages the fake received.
func (f *fakeTwilio) fetches() []recordedRequest {
	var out []recordedRequest
	for _, q := range f.requests() {
		if q.Method == http.MethodGet {
			out = append(out, q)
		}
	}
	return out
}

// twilioAt is twilio-go's client with its base URL swapped: twilio-go
// builds every URL on https://api.twilio.com (with no option to change
// it), so this client.BaseClient sends what the SDK builds to base
// instead — Keybrake's /twilio prefix or its bare address.
type twilioAt struct {
	*client.Client
	base string
}

func (c twilioAt) SendRequest(method, rawURL string, data url.Values, headers map[string]interface{}, body ...byte) (*http.Response, error) {
	if rest, ok := strings.CutPrefix(rawURL, "https://api.twilio.com"); ok {
		rawURL = c.base + rest
	}
	return c.Client.SendRequest(method, rawURL, data, headers, body...)
}

// twilioClient is the official twilio-go SDK as a user points it at
// Keybrake: any alphanumeric account SID as the username, the vault key
// as the password.
func twilioClient(base, vaultKey string, tr *sdkTransport) *twilio.RestClient {
	c := &client.Client{Credentials: client.NewCredentials(twilioClientSID, vaultKey), HTTPClient: tr.client()}
	c.SetAccountSid(twilioClientSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: twilioAt{Client: c, base: base}})
}

// TestTwilioThroughKeybrake: twilio-go sends SMS through Keybrake until
// the key's cap, which it surfaces as an error without retrying; Twilio
// gets the real credentials and SID, never the vault key; the audit shows
// each SM… sid at its provisional cost (unpriced) until the reconciler,
// running in Caddy, settles it at the price Twilio reports later.
func TestTwilioThroughKeybrake(t *testing.T) {
	need(t, true)
	fake := newFakeTwilio(t)
	caddyfile := writeCaddyfile(t, `
		vendor twilio {
			account_sid {env.TWILIO_ACCOUNT_SID}
			auth_token {env.TWILIO_AUTH_TOKEN}
			upstream {env.TWILIO_API_BASE}
			reconcile {
				min_age 1ms
				interval 50ms
			}
		}`, `
	handle_path /twilio/* {
		keybrake twilio
		reverse_proxy {$TWILIO_API_BASE} {
			header_up Host {upstream_hostport}
		}
	}
	handle /2010-04-01/* {
		keybrake twilio
		reverse_proxy {$TWILIO_API_BASE} {
			header_up Host {upstream_hostport}
		}
	}`)
	n := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: freshDatabase(t), env: map[string]string{
		"TWILIO_ACCOUNT_SID": twilioRealSID,
		"TWILIO_AUTH_TOKEN":  twilioRealToken,
		"TWILIO_API_BASE":    fake.URL,
	}})
	label := fmt.Sprintf("n8n/twilio-%d", time.Now().UnixNano())
	key := issueKey(t, n, map[string]any{
		"vendor": "twilio",
		// Three one-segment US SMS at $0.0083 fit in $0.03; a fourth does not.
		"total_usd_cap": 0.03,
		"allowed_endpoints": []string{
			"POST /2010-04-01/Accounts/*/Messages.json",
			"GET /2010-04-01/Accounts/*/Messages/*",
		},
		"agent_run_label": label,
	})
	tr := &sdkTransport{}
	tw := twilioClient(n.url+"/twilio", key.VaultKey, tr)
	send := func(i int) (*openapi.ApiV2010Message, error) {
		p := &openapi.CreateMessageParams{}
		p.SetTo("+14155550100")
		p.SetFrom("+15005550006")
		p.SetBody(fmt.Sprintf("Run %s finished step %d.", label, i))
		return tw.Api.CreateMessage(p)
	}
	var sids []string
	for i := 1; i <= 3; i++ {
		m, err := send(i)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if m.Sid == nil || !strings.HasPrefix(*m.Sid, "SM") || m.Price != nil {
			t.Fatalf("send %d: message %+v", i, m)
		}
		sids = append(sids, *m.Sid)
	}
	_, err := send(4)
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("4th send: err = %T %v; want a *client.TwilioRestError", err, err)
	}
	if te.Status != 429 || te.Code != 20429 || !strings.Contains(te.Message, "cap") {
		t.Fatalf("cap hit surfaced as %+v", te)
	}
	if status, h := tr.last(); status != 429 || h.Get("X-Keybrake-Cap-Hit") != "true" {
		t.Fatalf("cap hit answer: %d, X-Keybrake-Cap-Hit %q", status, h.Get("X-Keybrake-Cap-Hit"))
	}
	if got := tr.count(); got != 4 {
		t.Fatalf("twilio-go sent %d requests for 4 sends; want 4 (no retry)", got)
	}

	// Twilio's own root path works for an SDK pointed at the bare address.
	rootTr := &sdkTransport{}
	m, err := twilioClient(n.url, key.VaultKey, rootTr).Api.FetchMessage(sids[0], &openapi.FetchMessageParams{})
	if err != nil || m.Sid == nil || *m.Sid != sids[0] {
		t.Fatalf("fetching %s through /2010-04-01: %v %+v", sids[0], err, m)
	}

	// Upstream: exactly the three creates and the fetch came from the
	// client (the reconciler's fetches come in too), all with the real
	// credentials and SID, none with the vault key or the client's SID.
	if got := fake.count("POST", "/2010-04-01/Accounts/"+twilioRealSID+"/Messages.json"); got != 3 {
		t.Fatalf("Twilio got %d message creates; want 3", got)
	}
	realAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(twilioRealSID+":"+twilioRealToken))
	for _, q := range fake.requests() {
		if q.Header.Get("Authorization") != realAuth {
			t.Fatalf("Twilio got Authorization %q on %s %s", q.Header.Get("Authorization"), q.Method, q.Path)
		}
		if !strings.HasPrefix(q.Path, "/2010-04-01/Accounts/"+twilioRealSID+"/") {
			t.Fatalf("Twilio got path %s", q.Path)
		}
	}
	if fake.anyContains(key.VaultKey) || fake.anyContains(twilioClientSID+"/") {
		t.Fatal("the vault key or the client's account SID reached Twilio")
	}

	// The audit: three SM… sids at the provisional $0.0083 (Twilio has not
	// priced them: the reconciler has been fetching null prices), one cap
	// hit, one free fetch.
	calls := audit(t, n, label)
	groups := byOutcome(calls)
	if len(calls) != 5 || len(groups["forwarded"]) != 4 || len(groups["cap_hit"]) != 1 {
		t.Fatalf("audit = %+v; want 4 forwarded and 1 cap hit", calls)
	}
	seen := map[string]bool{}
	for _, c := range groups["forwarded"] {
		switch c.Method {
		case "POST":
			if !contains(strings.Join(sids, " "), c.VendorTxnID) || c.Cost.String() != "0.0083" ||
				c.Reserved.String() != "0.0083" || c.CostState != "unpriced" || c.StatusCode != 201 {
				t.Fatalf("message row %+v; want an SM sid, unpriced at 0.0083", c)
			}
			seen[c.VendorTxnID] = true
		case "GET":
			if c.Cost.String() != "0" || c.CostState != "settled" || c.StatusCode != 200 {
				t.Fatalf("fetch row %+v", c)
			}
		}
	}
	if len(seen) != 3 {
		t.Fatalf("audit names %d distinct sids; want 3", len(seen))
	}
	if cap := groups["cap_hit"][0]; cap.Cost.String() != "0" || cap.VendorTxnID != "" {
		t.Fatalf("cap hit row %+v", cap)
	}
	if k := getKey(t, n, key.KeyID); k.Spent.String() != "0.0249" || k.Reserved.String() != "0" {
		t.Fatalf("key = %+v; want 0.0249 spent (provisional)", k)
	}

	// Twilio prices the messages; the reconciler running in Caddy settles
	// them at the real price.
	fake.priced.Store(true)
	calls, ok := waitAudit(t, n, label, 10*time.Second, func(calls []auditCall) bool {
		for _, c := range calls {
			if c.Method == "POST" && c.Outcome == "forwarded" && c.CostState != "settled" {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("the reconciler did not settle the messages: %+v", calls)
	}
	for _, c := range calls {
		if c.Method == "POST" && c.Outcome == "forwarded" && (c.Cost.String() != "0.0075" || !seen[c.VendorTxnID]) {
			t.Fatalf("reconciled row %+v; want settled at 0.0075", c)
		}
	}
	if k := getKey(t, n, key.KeyID); k.Spent.String() != "0.0225" || k.Reserved.String() != "0" || k.Calls != 4 || k.CapHits != 1 {
		t.Fatalf("key after reconciliation = %+v; want 0.0225 spent, 4 calls, 1 cap hit", k)
	}
	// The reconciler fetched each message at its real path.
	fetched := map[string]bool{}
	for _, q := range fake.fetches() {
		fetched[strings.TrimSuffix(q.Path[strings.LastIndex(q.Path, "/")+1:], ".json")] = true
	}
	for _, sid := range sids {
		if !fetched[sid] {
			t.Errorf("no fetch of %s upstream", sid)
		}
	}
	if logs := n.log(t); strings.Contains(logs, twilioRealToken) || strings.Contains(logs, key.VaultKey) {
		t.Fatal("a secret appeared in Caddy's log")
	}
}
