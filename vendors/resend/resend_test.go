package resend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	resendgo "github.com/resend/resend-go/v3"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

const (
	vaultKey = "kbAbCdEfGhIjKlMnOpQrStUvWxYz0123456789ABCDEFG"
	realKey  = "re_real_123456"
)

func newVendor(t *testing.T, cfg Config) *Vendor {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = realKey
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func jsonReq(method, path, body string) (*http.Request, []byte) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r, []byte(body)
}

func TestNew(t *testing.T) {
	// Without an API key the vendor is built (its secret may come later),
	// but sends nothing upstream.
	bare, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := jsonReq("POST", "/emails", `{}`)
	r.Header.Set("Authorization", "Bearer kbAbCdEfGhIjKlMnOpQrStUvWxYz0123")
	var ve *vendors.Error
	if err := bare.Authorize(r); !errors.As(err, &ve) || ve.Status != http.StatusServiceUnavailable || ve.Code != "keybrake_vendor_not_configured" {
		t.Errorf("Authorize without an api key: %v", err)
	}
	if _, err := New(Config{APIKey: "k", PerEmailUSD: -1}); err == nil {
		t.Error("negative price accepted")
	}
}

func TestEstimate(t *testing.T) {
	v := newVendor(t, Config{})
	cheap := newVendor(t, Config{PerEmailUSD: 400})
	cases := []struct {
		name   string
		v      *Vendor
		method string
		path   string
		body   string
		want   money.Micros
		known  bool
	}{
		{"one recipient as a string", v, "POST", "/emails", `{"from":"a@x","to":"b@y","subject":"s","html":"h"}`, 900, true},
		{"to, cc, bcc", v, "POST", "/emails", `{"to":["a@x","b@x"],"cc":"c@x","bcc":["d@x","e@x","f@x"]}`, 6 * 900, true},
		{"configured price", cheap, "POST", "/emails", `{"to":["a@x","b@x"]}`, 800, true},
		{"no recipients", v, "POST", "/emails", `{"from":"a@x"}`, 0, false},
		{"batch", v, "POST", "/emails/batch", `[{"to":"a@x"},{"to":["b@x","c@x"],"bcc":"d@x"}]`, 4 * 900, true},
		{"cancel is free", v, "POST", "/emails/em_1/cancel", ``, 0, true},
		{"domains are free", v, "POST", "/domains", `{"name":"x.com"}`, 0, true},
		{"broadcast create may send", v, "POST", "/broadcasts", `{"send":true}`, 0, false},
		{"broadcast send", v, "POST", "/broadcasts/b1/send", `{}`, 0, false},
		{"GET is free", v, "GET", "/emails/em_1", ``, 0, true},
		{"PATCH is free", v, "PATCH", "/emails/em_1", `{"scheduled_at":"in 1 min"}`, 0, true},
		{"DELETE is free", v, "DELETE", "/domains/d1", ``, 0, true},
	}
	for _, c := range cases {
		r, body := jsonReq(c.method, c.path, c.body)
		est, err := c.v.Estimate(r, body)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if est.Known != c.known || (c.known && est.Cost != c.want) {
			t.Errorf("%s: estimate %+v; want %v known=%v", c.name, est, c.want, c.known)
		}
	}
	r, body := jsonReq("POST", "/emails", `{"to":`)
	var ve *vendors.Error
	if _, err := v.Estimate(r, body); !errors.As(err, &ve) || ve.Status != 400 {
		t.Errorf("malformed JSON: %v", err)
	}
}

func TestCredentialAndAuthorize(t *testing.T) {
	v := newVendor(t, Config{})
	for _, c := range []struct {
		auth string
		ok   bool
	}{{"Bearer " + vaultKey, true}, {"", false}, {"Bearer ", false}, {"Bearer re_123", false}, {"Basic " + vaultKey, false}} {
		r := httptest.NewRequest("POST", "/emails", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if _, ok := v.Credential(r); ok != c.ok {
			t.Errorf("Credential(%q) ok = %v", c.auth, ok)
		}
	}
	r, _ := jsonReq("POST", "/emails", `{"to":"a@x"}`)
	r.Header.Set("Authorization", "Bearer "+vaultKey)
	r.Header.Set("Idempotency-Key", "welcome-user-123")
	if err := v.Authorize(r); err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("Authorization") != "Bearer "+realKey || r.Header.Get("Idempotency-Key") != "welcome-user-123" {
		t.Errorf("headers = %v", r.Header)
	}
	for name, vals := range r.Header {
		if strings.Contains(strings.Join(vals, " "), vaultKey) {
			t.Errorf("header %s carries the vault key", name)
		}
	}
	if strings.Contains(r.URL.String(), vaultKey) {
		t.Error("URL carries the vault key")
	}
}

func TestSettle(t *testing.T) {
	v := newVendor(t, Config{})
	send, _ := jsonReq("POST", "/emails", "")
	batch, _ := jsonReq("POST", "/emails/batch", "")
	cases := []struct {
		name   string
		r      *http.Request
		status int
		body   string
		est    money.Micros
		want   vendors.Result
	}{
		{"sent", send, 200, `{"id":"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}`, 2_700,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 2_700, TxnID: "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}},
		{"batch", batch, 200, `{"data":[{"id":"e1"},{"id":"e2"},{"id":"e3"}]}`, 3_600,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 3_600, TxnID: "e1,e2,e3"}},
		// No per-email costs (an estimate from the unknown_cost policy): the
		// whole estimate, never a share.
		{"permissive batch without items", batch, 200, `{"data":[{"id":"e1"}],"errors":[{"index":1}]}`, 1_800,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 1_800, TxnID: "e1"}},
		{"422 releases", send, 422, `{"statusCode":422,"name":"validation_error","message":"x"}`, 900,
			vendors.Result{Decision: vendors.DecisionRelease}},
		{"429 from Resend releases", send, 429, `{"statusCode":429,"name":"rate_limit_exceeded"}`, 900,
			vendors.Result{Decision: vendors.DecisionRelease}},
		{"500 unknown", send, 500, `{}`, 900, vendors.Result{Decision: vendors.DecisionUnknown}},
	}
	for _, c := range cases {
		got := v.Settle(c.r, c.status, http.Header{}, []byte(c.body), vendors.Estimate{Cost: c.est, Known: true})
		if got != c.want {
			t.Errorf("%s: %+v; want %+v", c.name, got, c.want)
		}
	}
}

// TestSettlePermissiveBatchPerItem: a permissive batch settles at the sum
// of the emails Resend created, each at its own recipients (issue 17: one
// email to 150 recipients and 99 failed one-recipient emails cost 150
// emails, not the average 2.5).
func TestSettlePermissiveBatchPerItem(t *testing.T) {
	v := newVendor(t, Config{})
	batch, _ := jsonReq("POST", "/emails/batch", "")
	items := append([]money.Micros{150 * 900}, slices.Repeat([]money.Micros{900}, 99)...)
	est := vendors.Estimate{Cost: 249 * 900, Known: true, Items: items}
	var errs []string
	for i := 1; i < 100; i++ {
		errs = append(errs, fmt.Sprintf(`{"index":%d,"message":"invalid to"}`, i))
	}
	answer := `{"data":[{"id":"e0"}],"errors":[` + strings.Join(errs, ",") + `]}`
	got := v.Settle(batch, 200, http.Header{}, []byte(answer), est)
	if got.Decision != vendors.DecisionSettle || got.Cost != 150*900 {
		t.Fatalf("one big email sent, 99 small failed: %+v; want 150 emails", got)
	}
	cases := []struct {
		name   string
		answer string
		want   money.Micros
	}{
		{"the big one failed", `{"data":[{"id":"a"},{"id":"b"}],"errors":[{"index":0}]}`, 2_700},
		{"a small one failed", `{"data":[{"id":"a"},{"id":"b"}],"errors":[{"index":2}]}`, 135_000 + 900},
		{"all failed", `{"data":[],"errors":[{"index":0},{"index":1},{"index":2}]}`, 0},
		{"none failed", `{"data":[{"id":"a"},{"id":"b"},{"id":"c"}],"errors":[]}`, 137_700},
		// Answers that do not add up settle at the whole reservation.
		{"index out of range", `{"data":[{"id":"a"},{"id":"b"}],"errors":[{"index":3}]}`, 137_700},
		{"negative index", `{"data":[{"id":"a"},{"id":"b"}],"errors":[{"index":-1}]}`, 137_700},
		{"index twice", `{"data":[{"id":"a"}],"errors":[{"index":0},{"index":0}]}`, 137_700},
		{"no index", `{"data":[{"id":"a"},{"id":"b"}],"errors":[{"message":"x"}]}`, 137_700},
		{"too many created", `{"data":[{"id":"a"},{"id":"b"},{"id":"c"}],"errors":[{"index":0}]}`, 137_700},
	}
	three := vendors.Estimate{Cost: 137_700, Known: true, Items: []money.Micros{135_000, 900, 1_800}}
	for _, c := range cases {
		got := v.Settle(batch, 200, http.Header{}, []byte(c.answer), three)
		if got.Decision != vendors.DecisionSettle || got.Cost != c.want {
			t.Errorf("%s: %+v; want cost %d", c.name, got, c.want)
		}
	}
}

func TestEstimateBatchItems(t *testing.T) {
	v := newVendor(t, Config{})
	r, body := jsonReq("POST", "/emails/batch", `[{"to":["a@x.com","b@x.com"],"cc":"c@x.com"},{"to":"d@x.com","bcc":["e@x.com"]},{"to":[]}]`)
	est, err := v.Estimate(r, body)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(est.Items, []money.Micros{2_700, 1_800, 0}) || est.Cost != 4_500 {
		t.Fatalf("items %v cost %d", est.Items, est.Cost)
	}
}

// fakeResend answers like api.resend.com and records what it receives.
type fakeResend struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
	n    int
}

func (f *fakeResend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r.Clone(context.Background()))
	f.body = append(f.body, string(b))
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/emails":
		f.n++
		fmt.Fprintf(w, `{"id":"em-%d"}`, f.n)
	case "/emails/batch":
		var emails []json.RawMessage
		_ = json.Unmarshal(b, &emails)
		var ids []string
		for range emails {
			f.n++
			ids = append(ids, fmt.Sprintf(`{"id":"em-%d"}`, f.n))
		}
		fmt.Fprintf(w, `{"data":[%s]}`, strings.Join(ids, ","))
	default:
		w.WriteHeader(404)
		fmt.Fprint(w, `{"statusCode":404,"name":"not_found","message":"nope"}`)
	}
}

// miniGate is the gate's sequence in a few lines.
type miniGate struct {
	v        *Vendor
	upstream *url.URL
	cap      money.Micros
	mu       sync.Mutex
	spent    money.Micros
	results  []vendors.Result
}

func (g *miniGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if key, ok := g.v.Credential(r); !ok || key != vaultKey {
		g.v.WriteError(w, &vendors.Error{Status: 401, Code: "keybrake_invalid_key", Message: "Invalid vault key."})
		return
	}
	body, _ := io.ReadAll(r.Body)
	est, err := g.v.Estimate(r, body)
	if err != nil {
		g.v.WriteError(w, err.(*vendors.Error))
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

func TestResendGoThroughKeybrake(t *testing.T) {
	up := &fakeResend{}
	us := httptest.NewServer(up)
	defer us.Close()
	usURL, _ := url.Parse(us.URL)
	// Room for 5 recipients.
	gate := &miniGate{v: newVendor(t, Config{}), upstream: usURL, cap: 5 * DefaultPerEmailUSD}
	kb := httptest.NewServer(gate)
	defer kb.Close()

	c := resendgo.NewCustomClient(kb.Client(), vaultKey)
	c.BaseURL, _ = url.Parse(kb.URL + "/")
	ctx := context.Background()

	// 2 recipients.
	sent, err := c.Emails.SendWithOptions(ctx, &resendgo.SendEmailRequest{
		From: "run@x.dev", To: []string{"a@y.dev"}, Cc: []string{"b@y.dev"}, Subject: "s", Text: "t",
	}, &resendgo.SendEmailOptions{IdempotencyKey: "run-42/welcome"})
	if err != nil || sent.Id != "em-1" {
		t.Fatalf("send: %+v %v", sent, err)
	}
	// A batch of 2 emails, 3 recipients: 5 in all, exactly the cap.
	batch, err := c.Batch.SendWithContext(ctx, []*resendgo.SendEmailRequest{
		{From: "run@x.dev", To: []string{"c@y.dev"}, Subject: "s", Text: "t"},
		{From: "run@x.dev", To: []string{"d@y.dev", "e@y.dev"}, Subject: "s", Text: "t"},
	})
	if err != nil || len(batch.Data) != 2 {
		t.Fatalf("batch: %+v %v", batch, err)
	}
	// One more recipient is over the cap.
	_, err = c.Emails.Send(&resendgo.SendEmailRequest{From: "run@x.dev", To: []string{"f@y.dev"}, Subject: "s", Text: "t"})
	var rl *resendgo.RateLimitError
	if !errors.As(err, &rl) || !errors.Is(err, resendgo.ErrRateLimit) {
		t.Fatalf("over the cap: err = %T %v; want a *resend.RateLimitError", err, err)
	}
	if rl.Message != "This vault key's cap is reached." || rl.RetryAfter != "" {
		t.Fatalf("rate limit error = %+v", rl)
	}

	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.reqs) != 2 {
		t.Fatalf("upstream got %d requests", len(up.reqs))
	}
	for i, r := range up.reqs {
		if r.Header.Get("Authorization") != "Bearer "+realKey {
			t.Errorf("upstream %d Authorization %q", i, r.Header.Get("Authorization"))
		}
		all := r.URL.String() + up.body[i]
		for _, vs := range r.Header {
			all += strings.Join(vs, " ")
		}
		if strings.Contains(all, vaultKey) {
			t.Errorf("the vault key reached upstream in request %d", i)
		}
	}
	if got := up.reqs[0].Header.Get("Idempotency-Key"); got != "run-42/welcome" {
		t.Errorf("Idempotency-Key upstream = %q", got)
	}
	gate.mu.Lock()
	defer gate.mu.Unlock()
	want := []vendors.Result{
		{Decision: vendors.DecisionSettle, Cost: 1_800, TxnID: "em-1"},
		{Decision: vendors.DecisionSettle, Cost: 2_700, TxnID: "em-2,em-3"},
	}
	if len(gate.results) != 2 || gate.results[0] != want[0] || gate.results[1] != want[1] {
		t.Errorf("settlements = %+v; want %+v", gate.results, want)
	}
}

func TestResendGoSeesRefusals(t *testing.T) {
	v := newVendor(t, Config{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := v.Credential(r); !ok {
			v.WriteError(w, &vendors.Error{Status: 401, Code: "keybrake_missing_credential", Message: "No vault key provided."})
			return
		}
		v.WriteError(w, &vendors.Error{Status: 403, Code: "keybrake_unknown_cost", Message: "Keybrake cannot tell what this call will cost."})
	}))
	defer srv.Close()
	for key, want := range map[string]string{vaultKey: "[ERROR]: Keybrake cannot tell what this call will cost.", "bad": "[ERROR]: No vault key provided."} {
		c := resendgo.NewCustomClient(srv.Client(), key)
		c.BaseURL, _ = url.Parse(srv.URL + "/")
		_, err := c.Emails.Send(&resendgo.SendEmailRequest{From: "a@x", To: []string{"b@y"}, Subject: "s", Text: "t"})
		if err == nil || err.Error() != want {
			t.Errorf("key %q: err = %v; want %q", key, err, want)
		}
	}
}
