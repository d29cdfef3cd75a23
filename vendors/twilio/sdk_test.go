package twilio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	twiliogo "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// fakeTwilio answers like api.twilio.com's Messages create and records what
// it receives.
type fakeTwilio struct {
	mu       sync.Mutex
	requests []recorded
	n        int
}

type recorded struct {
	path, auth, body string
	header           http.Header
}

func (f *fakeTwilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: string(body), header: r.Header.Clone()})
	f.n++
	n := f.n
	f.mu.Unlock()
	form, _ := url.ParseQuery(string(body))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid":"SM%032d","account_sid":%q,"to":%q,"body":%q,"status":"queued","price":null,"price_unit":"USD","num_segments":"1"}`,
		n, realSID, form.Get("To"), form.Get("Body"))
}

// miniGate is the gate's sequence in a few lines: credential, estimate,
// reserve against a cap, authorize, forward, settle.
type miniGate struct {
	v        *Vendor
	upstream *url.URL
	cap      money.Micros
	mu       sync.Mutex
	spent    money.Micros
	results  []vendors.Result
	recorded []string // paths as audited
}

func (g *miniGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := g.v.Credential(r)
	if !ok || key != vaultKey {
		g.v.WriteError(w, &vendors.Error{Status: 401, Code: "keybrake_invalid_key", Message: "Invalid vault key."})
		return
	}
	body, _ := io.ReadAll(r.Body)
	est, err := g.v.Estimate(r, body)
	var ve *vendors.Error
	if errors.As(err, &ve) {
		g.v.WriteError(w, ve)
		return
	}
	g.mu.Lock()
	g.recorded = append(g.recorded, g.v.RecordedPath(r.URL.Path))
	reserve := est.Cost
	if est.Minimum > 0 && g.cap-g.spent < reserve {
		reserve = max(est.Minimum, g.cap-g.spent) // as much as the headroom allows
	}
	if !est.Known || g.spent+reserve > g.cap {
		g.mu.Unlock()
		w.Header().Set("X-Keybrake-Cap-Hit", "true")
		g.v.WriteError(w, &vendors.Error{Status: 429, Code: "keybrake_cap_hit", Message: "This vault key's cap is reached.", CapHit: true})
		return
	}
	g.spent += reserve
	g.mu.Unlock()
	if est.Fit != nil {
		if body, err = est.Fit(reserve); err != nil {
			t := err.(*vendors.Error)
			g.v.WriteError(w, t)
			return
		}
		r.ContentLength = int64(len(body))
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := g.v.Authorize(r); err != nil {
		g.v.WriteError(w, &vendors.Error{Status: 400, Code: "keybrake_bad_request", Message: err.Error()})
		return
	}
	proxy := httputil.NewSingleHostReverseProxy(g.upstream)
	proxy.ModifyResponse = func(resp *http.Response) error {
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		res := g.v.Settle(r, resp.StatusCode, resp.Header, b, est)
		g.mu.Lock()
		g.results = append(g.results, res)
		g.mu.Unlock()
		return nil
	}
	proxy.ServeHTTP(w, r)
}

// toServer sends every request, whatever its host, to one test server.
type toServer struct{ target *url.URL }

func (t toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = t.target.Scheme, t.target.Host, t.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

func TestTwilioGoThroughKeybrake(t *testing.T) {
	upstream := &fakeTwilio{}
	us := httptest.NewServer(upstream)
	defer us.Close()
	usURL, _ := url.Parse(us.URL)
	gate := &miniGate{v: newVendor(t, Config{}), upstream: usURL, cap: 3 * DefaultSMS}
	kb := httptest.NewServer(gate)
	defer kb.Close()
	kbURL, _ := url.Parse(kb.URL)

	// twilio-go as a user would set it up: any account SID as the username,
	// the vault key as the password, its HTTP client pointed at Keybrake.
	c := &client.Client{
		Credentials: client.NewCredentials(clientSID, vaultKey),
		HTTPClient:  &http.Client{Transport: toServer{kbURL}},
	}
	c.SetAccountSid(clientSID)
	tw := twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Client: c})

	send := func() (*openapi.ApiV2010Message, error) {
		p := &openapi.CreateMessageParams{}
		p.SetTo("+14155550100")
		p.SetFrom("+15005550006")
		p.SetBody("Your run finished.")
		return tw.Api.CreateMessage(p)
	}
	for i := 1; i <= 3; i++ {
		m, err := send()
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if m.Sid == nil || !strings.HasPrefix(*m.Sid, "SM") {
			t.Fatalf("send %d: sid %v", i, m.Sid)
		}
	}
	_, err := send()
	var te *client.TwilioRestError
	if !errors.As(err, &te) {
		t.Fatalf("4th send: err = %T %v; want a *client.TwilioRestError", err, err)
	}
	if te.Status != 429 || te.Code != 20429 || !strings.Contains(te.MoreInfo, "20429") {
		t.Fatalf("cap hit error = %+v", te)
	}

	upstream.mu.Lock()
	defer upstream.mu.Unlock()
	if len(upstream.requests) != 3 {
		t.Fatalf("upstream got %d requests; want 3", len(upstream.requests))
	}
	for _, rec := range upstream.requests {
		if rec.path != "/2010-04-01/Accounts/"+realSID+"/Messages.json" {
			t.Errorf("upstream path %q", rec.path)
		}
		if rec.auth != basic(realSID, realToken) {
			t.Errorf("upstream Authorization %q", rec.auth)
		}
		all := rec.path + rec.body
		for _, vs := range rec.header {
			all += strings.Join(vs, " ")
		}
		if strings.Contains(all, vaultKey) || strings.Contains(all, clientSID+"/") {
			t.Errorf("the vault key or the client's SID reached upstream: %v", rec)
		}
	}
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if gate.spent != 3*DefaultSMS {
		t.Errorf("spent %v", gate.spent)
	}
	for i, res := range gate.results {
		if res.Decision != vendors.DecisionUnpriced || res.TxnID != fmt.Sprintf("SM%032d", i+1) {
			t.Errorf("settle %d = %+v", i, res)
		}
	}
}

func TestTwilioGoSeesRefusals(t *testing.T) {
	v := newVendor(t, Config{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := v.Credential(r); !ok {
			v.WriteError(w, &vendors.Error{Status: 401, Code: "keybrake_missing_credential", Message: "No vault key provided."})
			return
		}
		v.WriteError(w, &vendors.Error{Status: 403, Code: "keybrake_endpoint_denied", Message: "This vault key may not call that."})
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	for _, c := range []struct {
		pw           string
		status, code int
	}{{vaultKey, 403, 20403}, {"notAVaultKey", 401, 20003}} {
		cl := &client.Client{Credentials: client.NewCredentials(clientSID, c.pw), HTTPClient: &http.Client{Transport: toServer{u}}}
		cl.SetAccountSid(clientSID)
		tw := twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Client: cl})
		_, err := tw.Api.FetchMessage("SM1", &openapi.FetchMessageParams{})
		var te *client.TwilioRestError
		if !errors.As(err, &te) || te.Status != c.status || te.Code != c.code {
			t.Errorf("password %q: err = %v", c.pw, err)
		}
	}
}

// newTwilioGo returns a twilio-go client that sends everything to srv with
// user as the Basic user (and path account SID) and the vault key.
func newTwilioGo(srv *httptest.Server, user string) *twiliogo.RestClient {
	u, _ := url.Parse(srv.URL)
	c := &client.Client{Credentials: client.NewCredentials(user, vaultKey), HTTPClient: &http.Client{Transport: toServer{u}}}
	c.SetAccountSid(user)
	return twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Client: c})
}

// twilio-go's call create through the gate: priced from its TimeLimit, and
// when the cap is smaller the call goes upstream with a TimeLimit the
// reservation covers. The vault key sent as the username is never in the
// audited path.
func TestTwilioGoCallBoundedByCap(t *testing.T) {
	upstream := &fakeTwilio{}
	us := httptest.NewServer(upstream)
	defer us.Close()
	usURL, _ := url.Parse(us.URL)
	gate := &miniGate{v: newVendor(t, Config{}), upstream: usURL, cap: 10*DefaultVoicePerMinute + 5_000}
	kb := httptest.NewServer(gate)
	defer kb.Close()
	tw := newTwilioGo(kb, vaultKey) // the vault key as the username too

	p := &openapi.CreateCallParams{}
	p.SetTo("+14155550100")
	p.SetFrom("+15005550006")
	p.SetUrl("https://example.com/twiml")
	p.SetTimeLimit(3600)
	if _, err := tw.Api.CreateCall(p); err != nil {
		t.Fatalf("call: %v", err)
	}
	upstream.mu.Lock()
	got := upstream.requests[0]
	upstream.mu.Unlock()
	form, _ := url.ParseQuery(got.body)
	if tl := form["TimeLimit"]; len(tl) != 1 || tl[0] != "600" {
		t.Errorf("upstream TimeLimit %v; want [600] (10 minutes reserved)", tl)
	}
	if form.Get("To") != "+14155550100" || form.Get("Url") != "https://example.com/twiml" {
		t.Errorf("upstream form %v", form)
	}
	if gate.spent != 10*DefaultVoicePerMinute+5_000 {
		t.Errorf("reserved %v", gate.spent)
	}
	// The next call cannot get a minute.
	var te *client.TwilioRestError
	if _, err := tw.Api.CreateCall(p); !errors.As(err, &te) || te.Status != 429 {
		t.Errorf("second call: %v", err)
	}
	for _, rp := range gate.recorded {
		if strings.Contains(rp, vaultKey) || !strings.Contains(rp, realSID) {
			t.Errorf("audited path %q", rp)
		}
	}
}

// twilio-go's credential calls are refused whatever the cap: a new API
// key, a sub-account, and the account fetch (which carries the auth token).
func TestTwilioGoCredentialEndpointsRefused(t *testing.T) {
	upstream := &fakeTwilio{}
	us := httptest.NewServer(upstream)
	defer us.Close()
	usURL, _ := url.Parse(us.URL)
	gate := &miniGate{v: newVendor(t, Config{}), upstream: usURL, cap: 1_000 * money.PerDollar}
	kb := httptest.NewServer(gate)
	defer kb.Close()
	tw := newTwilioGo(kb, clientSID)
	calls := map[string]func() error{
		"CreateNewKey": func() error { _, err := tw.Api.CreateNewKey(&openapi.CreateNewKeyParams{}); return err },
		"CreateNewSigningKey": func() error {
			_, err := tw.Api.CreateNewSigningKey(&openapi.CreateNewSigningKeyParams{})
			return err
		},
		"CreateAccount": func() error { _, err := tw.Api.CreateAccount(&openapi.CreateAccountParams{}); return err },
		"FetchAccount":  func() error { _, err := tw.Api.FetchAccount(clientSID); return err },
		"CreateSipCredentialList": func() error {
			p := &openapi.CreateSipCredentialListParams{}
			p.SetFriendlyName("x")
			_, err := tw.Api.CreateSipCredentialList(p)
			return err
		},
	}
	for name, call := range calls {
		var te *client.TwilioRestError
		if err := call(); !errors.As(err, &te) || te.Status != 403 || te.Code != 20403 {
			t.Errorf("%s: %v; want a 403", name, err)
		}
	}
	if len(upstream.requests) != 0 {
		t.Errorf("upstream reached: %v", upstream.requests)
	}
}
