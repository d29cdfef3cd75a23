package declared

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

func openaiEstimate(t *testing.T, ct, body string) (vendors.Estimate, error) {
	t.Helper()
	v, err := New(OpenAIChatExample("sk-real"))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	r.Header.Set("Content-Type", ct)
	return v.Estimate(r, []byte(body))
}

// TestBoundWritten: the OpenAI example's max_completion_tokens is written
// into the forwarded body when absent, lowered to what the reservation
// covers, and left alone when the request is already within it (issue 17,
// part 3).
func TestBoundWritten(t *testing.T) {
	const js = "application/json"
	est, err := openaiEstimate(t, js, `{"model":"m","messages":[{"role":"user","content":"<abcd>"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	// 4096 × 0.6 µ$ = 2457.6 → 2458; "<abcd>" is 6 chars → 2 tokens → 1 µ$.
	if est.Cost != 2459 || est.Minimum != 2 || est.Fit == nil {
		t.Fatalf("estimate %+v", est)
	}
	body, err := est.Fit(est.Cost)
	if err != nil || string(body) != `{"max_completion_tokens":4096,"messages":[{"content":"<abcd>","role":"user"}],"model":"m"}` {
		t.Fatalf("full reservation: %s %v", body, err)
	}
	// 1000 µ$ reserved: 999 µ$ for output buys 1665 tokens at 0.6 µ$.
	if body, _ := est.Fit(1000); !strings.Contains(string(body), `"max_completion_tokens":1665`) {
		t.Fatalf("partial reservation: %s", body)
	}
	if _, err := est.Fit(1); err == nil {
		t.Fatal("a reservation below one token was fitted")
	} else if ve := new(vendors.Error); !errors.As(err, &ve) || ve.Status != 429 || !ve.CapHit {
		t.Fatalf("below one token: %v", err)
	}

	// Given and within the reservation: the body is forwarded as sent.
	sent := `{"model":"m","max_tokens":100,"n":2,"messages":[]}`
	est, _ = openaiEstimate(t, js, sent)
	if body, _ := est.Fit(est.Cost); string(body) != sent {
		t.Fatalf("within: %s", body)
	}
	// Lowered in the field the request used: 61 µ$ buys 50 tokens × n=2.
	if body, _ := est.Fit(61); !strings.Contains(string(body), `"max_tokens":50,`) || strings.Contains(string(body), "max_completion_tokens") {
		t.Fatalf("lowered: %s", body)
	}
}

// TestBoundRequired: a rule that settles from the answer without a bound is
// a configuration error, and so is a bound Keybrake could not write.
func TestBoundRequired(t *testing.T) {
	base := func(est ...Term) Config {
		return Config{Name: "llm", Inject: vendors.InjectConfig{Secret: "s"}, Endpoints: []Endpoint{{
			Match: "POST /v1/x", Estimate: est,
			Settle: SettleConfig{Terms: []Term{{Field: "usage.tokens", PriceUSD: "0.001"}}}}}}
	}
	for name, c := range map[string]Config{
		"no bound":          base(Term{Field: "max_tokens", PriceUSD: "0.001", Default: "10"}),
		"bound, no default": base(Term{Field: "max_tokens", PriceUSD: "0.001", Bound: true}),
		"bound on count":    base(Term{Count: "to", PriceUSD: "0.001", Bound: true}),
		"bound under *":     base(Term{Field: "items.*.n", PriceUSD: "0.001", Default: "1", Bound: true}),
		"two bounds": base(Term{Field: "a", PriceUSD: "0.001", Default: "1", Bound: true},
			Term{Field: "b", PriceUSD: "0.001", Default: "1", Bound: true}),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := base(Term{Field: "gen.max_tokens", PriceUSD: "0.001", Default: "10", Bound: true}).Validate(); err != nil {
		t.Fatalf("a nested bound: %v", err)
	}
}

// TestOneReading: a request the vendor could read another way than
// Keybrake is refused with 400 (issue 17, part 4).
func TestOneReading(t *testing.T) {
	v, err := New(OpenAIChatExample("sk-real"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ target, ct, body string }{
		"JSON sent as a form":       {"/v1/chat/completions", "application/x-www-form-urlencoded", `{"max_tokens":100000,"messages":[]}`},
		"priced field in the query": {"/v1/chat/completions?max_tokens=100000", "application/json", `{"max_tokens":1,"messages":[]}`},
		"n in the query":            {"/v1/chat/completions?N=50", "application/json", `{"max_tokens":1,"messages":[]}`},
		"key given twice":           {"/v1/chat/completions", "application/json", `{"max_tokens":100000,"max_tokens":1,"messages":[]}`},
		"nested key given twice":    {"/v1/chat/completions", "application/json", `{"max_tokens":1,"messages":[{"content":"a","content":"bbbbbbbb"}]}`},
		"both alternatives":         {"/v1/chat/completions", "application/json", `{"max_completion_tokens":1,"max_tokens":100000,"messages":[]}`},
		"form field twice":          {"/v1/chat/completions", "application/x-www-form-urlencoded", `max_tokens=1&max_tokens=100000`},
		"form field in two cases":   {"/v1/chat/completions", "application/x-www-form-urlencoded", `max_tokens=1&MAX_TOKENS=100000`},
		"unreadable bound":          {"/v1/chat/completions", "application/json", `{"max_tokens":"lots","messages":[]}`},
	}
	for name, c := range cases {
		r := httptest.NewRequest(http.MethodPost, c.target, strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ct)
		_, err := v.Estimate(r, []byte(c.body))
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != http.StatusBadRequest {
			t.Errorf("%s: %v; want 400", name, err)
		}
	}
	// A query that names nothing priced is fine.
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions?api-version=1", strings.NewReader(`{"messages":[]}`))
	r.Header.Set("Content-Type", "application/json")
	if est, err := v.Estimate(r, []byte(`{"messages":[]}`)); err != nil || est.Cost != money.Micros(2458) {
		t.Fatalf("unrelated query: %+v %v", est, err)
	}
}
