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
	if !est.Known || g.spent+est.Cost > g.cap {
		g.mu.Unlock()
		w.Header().Set("X-Keybrake-Cap-Hit", "true")
		g.v.WriteError(w, &vendors.Error{Status: 429, Code: "keybrake_cap_hit", Message: "This vault key's cap is reached.", CapHit: true})
		return
	}
	g.spent += est.Cost
	g.mu.Unlock()
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
