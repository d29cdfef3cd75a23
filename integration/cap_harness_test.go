package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// The cap tests send calls through the gate to the simulated vendors
// (integration/simvendor), which move money the way Stripe, Twilio and
// Resend document it, and then check that the money moved for a key stayed
// within its cap and that the ledger counted at least that much.
//
// A capTarget is where the calls go: the gate in this process (capLocal,
// fast enough for thousands of randomized sequences) or a real Caddy node
// built from this repository (capNode, for the finding tests).

// Credentials the simulated vendors accept, and Keybrake forwards.
const (
	simStripeSecret = "sk_test_SimulatedStripe000000000000"
	simTwilioSID    = "AC00000000000000000000000000000001"
	simTwilioToken  = "simTwilioAuthToken00000000000000"
	simResendKey    = "re_SimulatedResend0000000000000"
	// simGBP is the pound's rate on both sides: $1.27.
	simGBP = 1_270_000
)

// capRequest is one call, as the vendor's SDK would send it (path as the
// vendor sees it; capNode adds Keybrake's route prefix where one is needed).
type capRequest struct {
	vendor, method, path string
	header               http.Header
	body                 string
}

// capResponse is what came back.
type capResponse struct {
	status int
	header http.Header
	body   string
}

func (r capResponse) String() string {
	return fmt.Sprintf("%d %s", r.status, text.Truncate(r.body, 300))
}

// capKey is an issued vault key.
type capKey struct {
	id, secret, vendor, label string
}

// capSpec is a key's caps and allowlist.
type capSpec struct {
	vendor   string
	total    *money.Micros
	daily    *money.Micros
	endpoint []string
}

type capTarget interface {
	issue(t testing.TB, spec capSpec) capKey
	do(t testing.TB, k capKey, req capRequest) capResponse
	// counted is what the ledger has counted for the key: spent + reserved.
	counted(t testing.TB, k capKey) money.Micros
}

// authorize puts the vault key where the vendor's SDK puts its credential.
func authorize(k capKey, h http.Header) {
	switch k.vendor {
	case "twilio":
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(simTwilioSID+":"+k.secret)))
	default:
		h.Set("Authorization", "Bearer "+k.secret)
	}
}

func newSim() *simvendor.Sim {
	return simvendor.New(simvendor.Config{
		StripeSecretKey: simStripeSecret, TwilioAccountSID: simTwilioSID, TwilioAuthToken: simTwilioToken,
		ResendAPIKey: simResendKey, Rates: map[string]int64{"gbp": simGBP, "jpy": 6_700},
	})
}

// capLocal is the gate in this process, on a real ledger, with the
// simulated vendors behind an in-process transport: no socket between the
// client, the gate and the vendor, so a sequence takes about a millisecond.
type capLocal struct {
	store ledger.Store
	keys  *ledger.KeyCache
	gates map[string]http.Handler
	mu    sync.Mutex
	now   time.Time
}

// inproc is an http.RoundTripper that serves requests with a handler.
type inproc struct{ h http.Handler }

func (t inproc) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

func newCapLocal(t testing.TB, dsn string, sim *simvendor.Sim, vendorsFor func(upstream map[string]*http.Client) map[string]vendors.Vendor) *capLocal {
	t.Helper()
	store, err := ledger.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("opening ledger: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := ledger.NewKeyCache(store, 10_000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	handlers := map[string]http.Handler{"stripe": sim.Stripe(), "twilio": sim.Twilio(), "resend": sim.Resend()}
	clients := map[string]*http.Client{}
	for name, h := range handlers {
		clients[name] = &http.Client{Transport: inproc{h}}
	}
	l := &capLocal{store: store, keys: keys, gates: map[string]http.Handler{}, now: time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)}
	for name, v := range vendorsFor(clients) {
		target, _ := url.Parse("http://" + name + ".sim")
		proxy := &httputil.ReverseProxy{
			Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
			Transport: inproc{handlers[name]},
		}
		g, err := gate.New(gate.Config{Vendor: v, Store: store, Keys: keys, Now: l.clock})
		if err != nil {
			t.Fatal(err)
		}
		l.gates[name] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = g.ServeHTTP(w, r, func(w http.ResponseWriter, r *http.Request) error {
				proxy.ServeHTTP(w, r)
				return nil
			})
		})
	}
	return l
}

// clock advances a millisecond a call, within one UTC day.
func (l *capLocal) clock() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = l.now.Add(time.Millisecond)
	return l.now
}

func (l *capLocal) issue(t testing.TB, spec capSpec) capKey {
	t.Helper()
	k := capKey{id: "vk" + randAlnum(20), secret: "kb" + randAlnum(40), vendor: spec.vendor}
	now := l.clock()
	err := l.store.CreateKey(context.Background(), ledger.Key{ID: k.id, Hash: ledger.HashSecret(k.secret), Vendor: spec.vendor,
		TotalCap: spec.total, DailyCap: spec.daily, AllowedEndpoints: spec.endpoint, RunLabel: "cap/" + k.id,
		CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)})
	if err != nil {
		t.Fatalf("creating key: %v", err)
	}
	return k
}

func (l *capLocal) do(t testing.TB, k capKey, req capRequest) capResponse {
	r := httptest.NewRequest(req.method, "http://keybrake.local"+req.path, strings.NewReader(req.body))
	for name, vals := range req.header {
		r.Header[name] = vals
	}
	authorize(k, r.Header)
	w := httptest.NewRecorder()
	l.gates[req.vendor].ServeHTTP(w, r)
	return capResponse{status: w.Code, header: w.Header(), body: w.Body.String()}
}

func (l *capLocal) counted(t testing.TB, k capKey) money.Micros {
	t.Helper()
	u, err := l.store.GetKey(context.Background(), k.id, l.now)
	if err != nil {
		t.Fatalf("reading key: %v", err)
	}
	return u.Spent + u.Reserved
}

// capNode is a real Caddy node (bin/caddy) in front of the simulated
// vendors, served on loopback.
type capNode struct {
	n *node
}

func (c capNode) issue(t testing.TB, spec capSpec) capKey {
	t.Helper()
	label := "cap/" + randAlnum(8)
	req := map[string]any{"vendor": spec.vendor, "allowed_endpoints": spec.endpoint, "expires_in": "2h",
		"agent_run_label": label}
	if spec.total != nil {
		req["total_usd_cap"] = json.Number(spec.total.String())
	}
	if spec.daily != nil {
		req["daily_usd_cap"] = json.Number(spec.daily.String())
	}
	k := issueKey(t.(*testing.T), c.n, req)
	return capKey{id: k.KeyID, secret: k.VaultKey, vendor: spec.vendor, label: label}
}

func (c capNode) do(t testing.TB, k capKey, req capRequest) capResponse {
	path := req.path
	if req.vendor == "resend" {
		path = "/resend" + path
	}
	r, err := http.NewRequest(req.method, c.n.url+path, strings.NewReader(req.body))
	if err != nil {
		t.Fatal(err)
	}
	for name, vals := range req.header {
		r.Header[name] = vals
	}
	authorize(k, r.Header)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", req.method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return capResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (c capNode) counted(t testing.TB, k capKey) money.Micros {
	t.Helper()
	v := getKey(t.(*testing.T), c.n, k.id)
	spent, err1 := money.ParseUSD(v.Spent.String())
	reserved, err2 := money.ParseUSD(v.Reserved.String())
	if err1 != nil || err2 != nil {
		t.Fatalf("key %s: spent %q reserved %q", k.id, v.Spent, v.Reserved)
	}
	return spent + reserved
}

// startCapNode runs a Caddy node whose vendors are the simulator's, on the
// given ledger. more, when given, is added to the keybrake global option
// (more[0]) and to the site's routes (more[1]).
func startCapNode(t *testing.T, sim *simvendor.Sim, ledgerDSN string, more ...string) capNode {
	t.Helper()
	stripeSrv := httptest.NewServer(sim.Stripe())
	twilioSrv := httptest.NewServer(sim.Twilio())
	resendSrv := httptest.NewServer(sim.Resend())
	t.Cleanup(func() { stripeSrv.Close(); twilioSrv.Close(); resendSrv.Close() })
	vendorBlocks := fmt.Sprintf(`		vendor stripe {
			secret_key %s
			upstream %s
			rate gbp 1.27
			rate jpy 0.0067
		}
		vendor twilio {
			account_sid %s
			auth_token %s
			upstream %s
			twiml_url https://example.com/
		}
		vendor resend {
			secret_key %s
		}`, simStripeSecret, stripeSrv.URL, simTwilioSID, simTwilioToken, twilioSrv.URL, simResendKey)
	routes := fmt.Sprintf(`	handle /v1/* {
		keybrake stripe
		reverse_proxy %s
	}
	handle /2010-04-01/* {
		keybrake twilio
		reverse_proxy %s
	}
	handle_path /resend/* {
		keybrake resend
		reverse_proxy %s
	}`, stripeSrv.URL, twilioSrv.URL, resendSrv.URL)
	if len(more) == 2 {
		vendorBlocks, routes = vendorBlocks+"\n"+more[0], routes+"\n"+more[1]
	}
	n := startNode(t, nodeConfig{caddyfile: writeCaddyfile(t, vendorBlocks, routes), ledger: ledgerDSN})
	return capNode{n: n}
}

// usdOf is a cap of whole and fractional dollars.
func usdOf(s string) *money.Micros {
	m, err := money.ParseUSD(s)
	if err != nil {
		panic(err)
	}
	return &m
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randAlnum(n int) string {
	b := make([]byte, n)
	for i := range b {
		x, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		b[i] = alnum[x.Int64()]
	}
	return string(b)
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func formHeader(extra ...string) http.Header {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return h
}

func jsonHeader(extra ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	return h
}
