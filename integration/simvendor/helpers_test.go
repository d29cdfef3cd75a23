package simvendor

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testStripeKey   = "sk_test_simvendorsecret1234"
	testTwilioSID   = "AC00000000000000000000000000000001"
	testTwilioToken = "authtoken0000000000000000000000a"
	testResendKey   = "re_simvendorkey"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a simulator with the three vendors served over HTTP.
type env struct {
	sim                    *Sim
	clock                  *clock
	stripe, twilio, resend *httptest.Server
}

func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	ck := &clock{t: time.Date(2030, 1, 15, 12, 0, 0, 0, time.UTC)}
	cfg := Config{
		StripeSecretKey:  testStripeKey,
		TwilioAccountSID: testTwilioSID,
		TwilioAuthToken:  testTwilioToken,
		ResendAPIKey:     testResendKey,
		Now:              ck.Now,
		Rates:            map[string]int64{"gbp": 1_270_000, "jpy": 6_700, "kwd": 3_250_000},
	}
	for _, m := range mod {
		m(&cfg)
	}
	e := &env{sim: New(cfg), clock: ck}
	e.stripe = httptest.NewServer(e.sim.Stripe())
	e.twilio = httptest.NewServer(e.sim.Twilio())
	e.resend = httptest.NewServer(e.sim.Resend())
	t.Cleanup(func() {
		e.stripe.Close()
		e.twilio.Close()
		e.resend.Close()
	})
	return e
}

// resp is a decoded answer.
type resp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r resp) str(path ...string) string {
	v := r.get(path...)
	s, _ := v.(string)
	return s
}

func (r resp) num(path ...string) int64 {
	v := r.get(path...)
	f, _ := v.(float64)
	return int64(f)
}

func (r resp) get(path ...string) any {
	var cur any = r.body
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func do(t *testing.T, req *http.Request) resp {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// stripeReq sends a form request to the simulated Stripe. hdr holds extra
// headers as name, value pairs.
func (e *env) stripeReq(t *testing.T, method, path string, form url.Values, hdr ...string) resp {
	t.Helper()
	var body io.Reader
	target := e.stripe.URL + path
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if form != nil {
		target += "?" + form.Encode()
	}
	req, _ := http.NewRequest(method, target, body)
	req.Header.Set("Authorization", "Bearer "+testStripeKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func (e *env) twilioReq(t *testing.T, method, path string, form url.Values, user, pass string) resp {
	t.Helper()
	req, _ := http.NewRequest(method, e.twilio.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return do(t, req)
}

func (e *env) resendReq(t *testing.T, method, path, body string, hdr ...string) resp {
	t.Helper()
	req, _ := http.NewRequest(method, e.resend.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testResendKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func wantStatus(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
}

func wantMoved(t *testing.T, s *Sim, vendor string, want int64) {
	t.Helper()
	if got := s.Moved(vendor); got != want {
		t.Fatalf("Moved(%q) = %d, want %d; events: %+v", vendor, got, want, s.Events())
	}
}
