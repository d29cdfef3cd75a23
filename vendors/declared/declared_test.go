package declared

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

const vaultKey = "kbAbCdEfGhIjKlMnOpQrStUvWxYz0123456789ABCDEFG"

func TestParsePrice(t *testing.T) {
	good := map[string]Price{
		"0": 0, "1": 1_000_000_000, "0.000000001": 1, "0.00000015": 150,
		"0.0083": 8_300_000, ".5": 500_000_000, "2.500000000000": 2_500_000_000,
	}
	for in, want := range good {
		got, err := ParsePrice(in)
		if err != nil || got != want {
			t.Errorf("ParsePrice(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1e-6", "0.0000000001", "abc", "1.", "99999999999999", "1,5"} {
		if _, err := ParsePrice(in); !errors.Is(err, money.ErrInvalidAmount) {
			t.Errorf("ParsePrice(%q) err = %v; want ErrInvalidAmount", in, err)
		}
	}
}

func TestPriceCostRoundsUp(t *testing.T) {
	p, _ := ParsePrice("0.00000015")
	cases := map[int64]money.Micros{0: 0, 1: 1, 6: 1, 7: 2, 20: 3, 1_000_000: 150_000}
	for units, want := range cases {
		got, err := p.Cost(big.NewRat(units, 1))
		if err != nil || got != want {
			t.Errorf("%d units × $0.00000015 = %v, %v; want %v", units, got, err, want)
		}
	}
}

// assertNoTrace fails if the vault key, or its Basic encoding, is anywhere
// on the request.
func assertNoTrace(t *testing.T, r *http.Request, key string) {
	t.Helper()
	for name, vals := range r.Header {
		for _, v := range vals {
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "Basic "))
			if strings.Contains(v, key) || strings.Contains(string(raw), key) {
				t.Errorf("header %s still carries the vault key: %q", name, v)
			}
		}
	}
	for _, s := range []string{r.URL.String(), r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.RequestURI} {
		if strings.Contains(s, key) {
			t.Errorf("URL still carries the vault key: %q", s)
		}
	}
}

func TestAuthorizeLeavesNoTrace(t *testing.T) {
	cases := []struct {
		name   string
		from   vendors.CredentialConfig
		inject vendors.InjectConfig
		set    func(r *http.Request)
		check  func(t *testing.T, r *http.Request)
	}{
		{"bearer to bearer", vendors.CredentialConfig{}, vendors.InjectConfig{Secret: "sk-real"},
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+vaultKey) },
			func(t *testing.T, r *http.Request) {
				if got := r.Header.Get("Authorization"); got != "Bearer sk-real" {
					t.Errorf("Authorization = %q", got)
				}
			}},
		{"header to basic", vendors.CredentialConfig{From: vendors.FromHeader, Header: "X-Api-Key"}, vendors.InjectConfig{As: vendors.InjectBasic, Username: "u", Secret: "p"},
			func(r *http.Request) { r.Header.Set("X-Api-Key", vaultKey) },
			func(t *testing.T, r *http.Request) {
				if u, p, _ := r.BasicAuth(); u != "u" || p != "p" {
					t.Errorf("basic = %q %q", u, p)
				}
				if r.Header.Get("X-Api-Key") != "" {
					t.Error("X-Api-Key kept")
				}
			}},
		{"bearer to header, key copied elsewhere", vendors.CredentialConfig{}, vendors.InjectConfig{As: vendors.InjectHeader, Header: "X-Goog-Api-Key", Secret: "real"},
			func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+vaultKey)
				r.Header.Set("X-Copy", "prefix-"+vaultKey)
				r.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("x:"+vaultKey)))
				r.Header.Set("Cookie", "k="+vaultKey)
			},
			func(t *testing.T, r *http.Request) {
				if r.Header.Get("X-Goog-Api-Key") != "real" || r.Header.Get("Authorization") != "" {
					t.Errorf("headers = %v", r.Header)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := New(Config{Name: "x", Credential: c.from, Inject: c.inject})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions?stream=false", strings.NewReader("{}"))
			c.set(r)
			if _, ok := v.Credential(r); !ok {
				t.Fatal("credential not found")
			}
			if err := v.Authorize(r); err != nil {
				t.Fatal(err)
			}
			assertNoTrace(t, r, vaultKey)
			c.check(t, r)
		})
	}
	// The key in the URL is refused, not forwarded.
	v, err := New(Config{Name: "x", Inject: vendors.InjectConfig{Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/v1/models?key="+vaultKey, nil)
	r.Header.Set("Authorization", "Bearer "+vaultKey)
	var ve *vendors.Error
	if err := v.Authorize(r); !errors.As(err, &ve) || ve.Status != http.StatusBadRequest {
		t.Fatalf("key in query: err = %v", err)
	}
	// No credential: nothing to swap.
	r = httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	if err := v.Authorize(r); !errors.As(err, &ve) || ve.Status != http.StatusUnauthorized {
		t.Fatalf("no credential: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := func() Config { return OpenAIChatExample("sk-test") }
	if err := ok().Validate(); err != nil {
		t.Fatalf("example invalid: %v", err)
	}
	cases := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"bad name", func(c *Config) { c.Name = "Open AI" }, "vendor name"},
		{"bad upstream", func(c *Config) { c.Upstream = "api.openai.com" }, "upstream"},
		{"bad from", func(c *Config) { c.Credential.From = "query" }, "credential: from"},
		{"header without name", func(c *Config) { c.Credential = vendors.CredentialConfig{From: vendors.FromHeader} }, "header name is required"},
		{"header on bearer", func(c *Config) { c.Credential.Header = "X-Api-Key" }, "only for from"},
		{"keybrake header", func(c *Config) {
			c.Credential = vendors.CredentialConfig{From: vendors.FromHeader, Header: "X-Keybrake-Key"}
		}, "Keybrake's own"},
		{"bad inject", func(c *Config) { c.Inject.As = "query" }, "inject: as"},
		{"username on bearer", func(c *Config) { c.Inject.Username = "u" }, "not used"},
		{"secret with newline", func(c *Config) { c.Inject.Secret = "a\nb" }, "one line"},
		{"bad format", func(c *Config) { c.ErrorFormat = "xml" }, "error_format"},
		{"bad free method", func(c *Config) { c.FreeMethods = []string{"FETCH"} }, "free_methods"},
		{"bad match", func(c *Config) { c.Endpoints[0].Match = "post /v1/x" }, "match"},
		{"duplicate match", func(c *Config) { c.Endpoints = append(c.Endpoints, c.Endpoints[0]) }, "duplicate"},
		{"two kinds", func(c *Config) { c.Endpoints[0].Estimate[0].FlatUSD = "1" }, "exactly one"},
		{"no kind", func(c *Config) { c.Endpoints[0].Estimate[0] = Term{PriceUSD: "1"} }, "exactly one"},
		{"no price", func(c *Config) { c.Endpoints[0].Estimate[0].PriceUSD = "" }, "price_usd is required"},
		{"float price", func(c *Config) { c.Endpoints[0].Estimate[0].PriceUSD = "6e-7" }, "price_usd"},
		{"ten decimals", func(c *Config) { c.Endpoints[0].Estimate[0].PriceUSD = "0.0000000001" }, "more than 9 decimals"},
		{"flat with price", func(c *Config) { c.Endpoints[0].Estimate[0] = Term{FlatUSD: "0.01", PriceUSD: "1"} }, "flat_usd takes no"},
		{"bad flat", func(c *Config) { c.Endpoints[0].Estimate[0] = Term{FlatUSD: "-1"} }, "flat_usd"},
		{"default on count", func(c *Config) { c.Endpoints[0].Estimate[0] = Term{Count: "to", PriceUSD: "1", Default: "1"} }, "default is only for field"},
		{"bad default", func(c *Config) { c.Endpoints[0].Estimate[0].Default = "lots" }, "default"},
		{"cpu on field", func(c *Config) { c.Endpoints[0].Estimate[0].CharsPerUnit = 3 }, "chars_per_unit is only"},
		{"cpu too big", func(c *Config) { c.Endpoints[0].Estimate[1].CharsPerUnit = 5000 }, "chars_per_unit"},
		{"empty path segment", func(c *Config) { c.Endpoints[0].Estimate[0].Field = "usage..x" }, "empty segment"},
		{"bad txn path", func(c *Config) { c.Endpoints[0].Settle.TxnIDPath = "a|" }, "txn_id_path"},
		{"bad settle term", func(c *Config) { c.Endpoints[0].Settle.Terms[0].PriceUSD = "x" }, "settle.terms[0]"},
	}
	for _, c := range cases {
		cfg := ok()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v; want it to mention %q", c.name, err, c.want)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	// Prices may be JSON strings or numbers; both are parsed exactly.
	raw := `{"name":"maps","credential":{"from":"header","header":"X-Api-Key"},
	  "inject":{"as":"header","header":"X-Goog-Api-Key","secret":"real"},
	  "error_format":"json",
	  "endpoints":[{"match":"GET /maps/api/geocode/json","estimate":[{"flat_usd":0.005}]},
	               {"match":"POST /v1/items","estimate":[{"field":"qty","price_usd":"0.1","default":1}]}]}`
	var cfg Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/maps/api/geocode/json?address=x", nil)
	est, err := v.Estimate(r, nil)
	if err != nil || !est.Known || est.Cost != 5_000 {
		t.Fatalf("geocode estimate = %+v, %v", est, err)
	}
	r = httptest.NewRequest(http.MethodPost, "/v1/items", nil)
	if est, _ := v.Estimate(r, nil); est.Cost != 100_000 {
		t.Fatalf("default qty estimate = %+v", est)
	}
	out, _ := json.Marshal(cfg)
	var back Config
	if err := json.Unmarshal(out, &back); err != nil || back.Endpoints[0].Estimate[0].FlatUSD != "0.005" {
		t.Fatalf("round trip: %s, %v", out, err)
	}
}

func jsonReq(method, path, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestEstimate(t *testing.T) {
	v, err := New(Config{
		Name:   "acme",
		Inject: vendors.InjectConfig{Secret: "s"},
		Endpoints: []Endpoint{
			{Match: "POST /v1/send", Estimate: []Term{
				{FlatUSD: "0.01"},
				{Count: "to", PriceUSD: "0.001"},
				{Count: "cc", PriceUSD: "0.001"},
			}},
			{Match: "POST /v1/batch", Estimate: []Term{{Count: "*.to", PriceUSD: "0.001"}}},
			{Match: "POST /v1/items/*", Estimate: []Term{{Field: "qty", PriceUSD: "0.25", Times: "n"}}},
			{Match: "POST /v1/text", Estimate: []Term{{Chars: "parts.*.text", CharsPerUnit: 3, PriceUSD: "0.000001"}}},
			{Match: "POST /v1/form", Estimate: []Term{{Count: "To", PriceUSD: "0.5"}, {Field: "Qty", PriceUSD: "0.1"}}},
			{Match: "POST /v1/free"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		r     *http.Request
		want  money.Micros
		known bool
	}{
		{"flat + recipients (array and string)", jsonReq("POST", "/v1/send", `{"to":["a@x","b@x"],"cc":"c@x"}`), 10_000 + 3_000, true},
		{"null and absent count 0", jsonReq("POST", "/v1/send", `{"to":null}`), 10_000, true},
		{"batch", jsonReq("POST", "/v1/batch", `[{"to":"a"},{"to":["b","c","d"]}]`), 4_000, true},
		{"field × times", jsonReq("POST", "/v1/items/abc", `{"qty":3,"n":2}`), 1_500_000, true},
		{"decimal field", jsonReq("POST", "/v1/items/abc", `{"qty":"0.5"}`), 125_000, true},
		{"missing field, no default", jsonReq("POST", "/v1/items/abc", `{}`), 0, false},
		{"negative field", jsonReq("POST", "/v1/items/abc", `{"qty":-1}`), 0, false},
		{"non-numeric field", jsonReq("POST", "/v1/items/abc", `{"qty":"many"}`), 0, false},
		{"object field", jsonReq("POST", "/v1/items/abc", `{"qty":{"a":1}}`), 0, false},
		// "héllo" (5) + "wörld!" (6) = 11 chars → ceil(11/3) = 4 units × $0.000001.
		{"chars", jsonReq("POST", "/v1/text", `{"parts":[{"text":"héllo"},{"text":"wörld!"}]}`), 4, true},
		{"form", func() *http.Request {
			r := httptest.NewRequest("POST", "/v1/form", strings.NewReader("To=a&To=b&Qty=2"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(), 1_200_000, true},
		{"free endpoint", jsonReq("POST", "/v1/free", `{}`), 0, true},
		{"unmatched GET is free", httptest.NewRequest("GET", "/v1/anything", nil), 0, true},
		{"unmatched POST is unknown", jsonReq("POST", "/v1/other", `{}`), 0, false},
		{"wrong segment count", jsonReq("POST", "/v1/items", `{"qty":1}`), 0, false},
	}
	for _, c := range cases {
		body := readAll(t, c.r)
		est, err := v.Estimate(c.r, body)
		if err != nil {
			t.Errorf("%s: err %v", c.name, err)
			continue
		}
		if est.Known != c.known || (c.known && est.Cost != c.want) {
			t.Errorf("%s: estimate = %+v; want cost %v known %v", c.name, est, c.want, c.known)
		}
		if !est.Known && est.Reason == "" {
			t.Errorf("%s: unknown estimate without a reason", c.name)
		}
	}
	for _, bad := range []*http.Request{
		jsonReq("POST", "/v1/send", `{"to":`),
		jsonReq("POST", "/v1/send", `{"to":"a"} {}`),
		func() *http.Request {
			r := httptest.NewRequest("POST", "/v1/send", strings.NewReader("x"))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}(),
	} {
		_, err := v.Estimate(bad, readAll(t, bad))
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != http.StatusBadRequest {
			t.Errorf("malformed body: err = %v; want a 400 *vendors.Error", err)
		}
	}
}

func readAll(t *testing.T, r *http.Request) []byte {
	t.Helper()
	if r.Body == nil {
		return nil
	}
	var b strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

func TestSettle(t *testing.T) {
	v, err := New(Config{
		Name:   "acme",
		Inject: vendors.InjectConfig{Secret: "s"},
		Endpoints: []Endpoint{
			{Match: "POST /v1/send", Estimate: []Term{{FlatUSD: "0.01"}},
				Settle: SettleConfig{TxnIDPath: "data.*.id"}},
			{Match: "POST /v1/metered", Estimate: []Term{{FlatUSD: "0.001"},
				{Field: "max_units", PriceUSD: "0.003", Default: "3", Bound: true}},
				Settle: SettleConfig{TxnIDPath: "id", Terms: []Term{
					{Field: "usage.units", PriceUSD: "0.003"},
					{Field: "usage.extra", PriceUSD: "1", Default: "0"},
				}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	send := jsonReq("POST", "/v1/send", "{}")
	metered := jsonReq("POST", "/v1/metered", "{}")
	est := vendors.Estimate{Cost: 10_000, Known: true}
	cases := []struct {
		name   string
		r      *http.Request
		status int
		body   string
		want   vendors.Result
	}{
		{"2xx at estimate, ids joined", send, 200, `{"data":[{"id":"a1"},{"id":"b2"}]}`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 10_000, TxnID: "a1,b2"}},
		{"2xx unreadable body still settles at estimate", send, 200, `<html>`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 10_000}},
		{"2xx metered", metered, 201, `{"id":"m_1","usage":{"units":3}}`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 9_000, TxnID: "m_1"}},
		// An answer above the reservation settles at the reservation.
		{"2xx metered, more than reserved", metered, 201, `{"id":"m_3","usage":{"units":7}}`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 10_000, TxnID: "m_3"}},
		{"2xx metered, usage missing", metered, 200, `{"id":"m_2"}`,
			vendors.Result{Decision: vendors.DecisionUnpriced, TxnID: "m_2"}},
		{"2xx metered, streamed", metered, 200, "data: {\"id\":\"x\"}\n\n",
			vendors.Result{Decision: vendors.DecisionUnpriced}},
		{"4xx releases", metered, 422, `{"error":{}}`, vendors.Result{Decision: vendors.DecisionRelease}},
		{"5xx unknown", metered, 503, ``, vendors.Result{Decision: vendors.DecisionUnknown}},
		{"3xx unknown", metered, 302, ``, vendors.Result{Decision: vendors.DecisionUnknown}},
	}
	for _, c := range cases {
		got := v.Settle(c.r, c.status, http.Header{}, []byte(c.body), est)
		if got.Decision != c.want.Decision || got.TxnID != c.want.TxnID ||
			(got.Decision == vendors.DecisionSettle && got.Cost != c.want.Cost) {
			t.Errorf("%s: Settle = %+v; want %+v", c.name, got, c.want)
		}
	}
}
