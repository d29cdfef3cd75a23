package vendors

import (
	"net/http/httptest"
	"testing"
)

func TestAllowlistMatch(t *testing.T) {
	a, err := ParseAllowlist([]string{"POST /v1/payment_intents", "GET /v1/customers/*", "POST /v1/payment_intents/*/confirm"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, want string
		ok                 bool
	}{
		{"POST", "/v1/payment_intents", "POST /v1/payment_intents", true},
		{"GET", "/v1/payment_intents", "", false},
		{"GET", "/v1/customers/cus_1", "GET /v1/customers/*", true},
		{"GET", "/v1/customers/cus_1/sources", "", false},
		{"GET", "/v1/customers", "", false},
		{"POST", "/v1/payment_intents/pi_1/confirm", "POST /v1/payment_intents/*/confirm", true},
		{"POST", "/v1/payment_intents/pi_1/capture", "", false},
		{"POST", "/v1/payment_intents/", "", false},
	}
	for _, c := range cases {
		got, ok := a.Match(c.method, c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("Match(%s %s) = %q,%v; want %q,%v", c.method, c.path, got, ok, c.want, c.ok)
		}
	}
	var empty Allowlist
	if _, ok := empty.Match("GET", "/v1/customers"); ok {
		t.Error("empty allowlist allowed a call")
	}
}

func TestParseAllowlistRejects(t *testing.T) {
	for _, e := range []string{"", "POST", "post /v1/x", "FOO /v1", "POST v1/x", "GET /v1//x", "GET /v1/../x", "GET /v1/cus_*", "GET /v1/%2f"} {
		if _, err := ParseAllowlist([]string{e}); err == nil {
			t.Errorf("accepted %q", e)
		}
	}
}

func TestCanonicalPathRefusesBypasses(t *testing.T) {
	bad := []string{
		"/v1/customers/..%2fpayouts", "/v1/customers/%2e%2e/payouts", "/v1//payouts",
		"/v1/customers/x%2Fy", "/v1/./payouts", "/v1/customers/%5c", "/v1/a%00",
	}
	for _, p := range bad {
		r := httptest.NewRequest("GET", "http://x"+p, nil)
		if got, err := CanonicalPath(r); err == nil {
			t.Errorf("CanonicalPath(%q) = %q; want refusal", p, got)
		}
	}
	r := httptest.NewRequest("GET", "http://x/v1/customers/cus_123?expand[]=x", nil)
	if got, err := CanonicalPath(r); err != nil || got != "/v1/customers/cus_123" {
		t.Errorf("got %q %v", got, err)
	}
}

func TestAllowlistCovers(t *testing.T) {
	policy, err := ParseAllowlist([]string{"POST /v1/payment_intents", "GET /v1/customers/*", "POST /v1/payment_intents/*/confirm"})
	if err != nil {
		t.Fatal(err)
	}
	for entry, want := range map[string]bool{
		"POST /v1/payment_intents":              true,
		"GET /v1/customers/cus_123":             true,
		"GET /v1/customers/*":                   true,
		"POST /v1/payment_intents/pi_1/confirm": true,
		"POST /v1/payment_intents/*/confirm":    true,
		"POST /v1/*":                            false, // wider than any policy pattern
		"GET /v1/payment_intents":               false, // other method
		"GET /v1/customers":                     false, // fewer segments
		"GET /v1/customers/*/sources":           false, // more segments
		"POST /v1/payment_intents/*/capture":    false,
		"POST v1/payment_intents":               false, // not a pattern
	} {
		if got := policy.Covers(entry); got != want {
			t.Errorf("Covers(%q) = %v; want %v", entry, got, want)
		}
	}
}
