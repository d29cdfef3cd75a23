package allowlist

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	good := map[string]string{
		"POST /v1/payment_intents":                  "POST /v1/payment_intents",
		"GET /v1/customers/*":                       "GET /v1/customers/*",
		"GET /v1/payment_intents/*/confirm":         "GET /v1/payment_intents/*/confirm",
		"POST /2010-04-01/Accounts/*/Messages.json": "POST /2010-04-01/Accounts/*/Messages.json",
		"  DELETE   /emails/*  ":                    "DELETE /emails/*",
		"PATCH /a-b_c.d~e/f:g@h/!$&'()+,;=":         "PATCH /a-b_c.d~e/f:g@h/!$&'()+,;=",
		"HEAD /*":                                   "HEAD /*",
		"OPTIONS /v1/*/*":                           "OPTIONS /v1/*/*",
	}
	for in, want := range good {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                   `"METHOD /path"`,
		"POST":               `"METHOD /path"`,
		"/v1/x":              `"METHOD /path"`,
		"post /v1/x":         "must be uppercase",
		"Post /v1/x":         "must be uppercase",
		"* /v1/x":            "is not one of",
		"CONNECT /x":         "is not one of",
		"TRACE /x":           "is not one of",
		"POST v1/x":          "must start with /",
		"POST *":             "must start with /",
		"GET /v1/cus*":       "whole path segment",
		"GET /v1/**":         "whole path segment",
		"GET /v1//x":         "empty segment",
		"GET //":             "empty segment",
		"GET /":              "empty segment",
		"GET /v1/customers/": "ends with /",
		"PUT /v1/x/":         "ends with /",
		"GET /v1/./x":        `"." segment`,
		"GET /v1/..":         `".." segment`,
		"GET /v1/x?y=1":      "not allowed",
		"GET /v1/x#f":        "not allowed",
		"GET /v1/%41":        "not allowed",
		"GET /v1/%2f":        "not allowed",
		"GET /v1/a\\b":       "not allowed",
		"GET /v1/é":          "not allowed",
		"GET /a /b":          `"METHOD /path"`,
		"GET /v1/\x00":       "not allowed",
		"GET /" + strings.Repeat("a", MaxEntryLength): "at most",
	}
	for in, want := range bad {
		got, err := Normalize(in)
		if err == nil {
			t.Errorf("Normalize(%q) = %q, want an error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Normalize(%q) error %q; want it to say %q", in, err, want)
		}
	}
}

func TestMatch(t *testing.T) {
	l, err := Parse([]string{"POST /v1/payment_intents", "GET /v1/customers/*", "POST /v1/payment_intents/*/confirm"})
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
		{"GET", "/v1/customers/", "", false},
		{"POST", "/v1/payment_intents/pi_1/confirm", "POST /v1/payment_intents/*/confirm", true},
		{"POST", "/v1/payment_intents/pi_1/capture", "", false},
		{"POST", "/v1/payment_intents/", "", false},
		{"POST", "/v1/payment_intents//confirm", "", false},
		{"POST", "v1/payment_intents", "", false},
		{"POST", "/", "", false},
		{"POST", "", "", false},
	}
	for _, c := range cases {
		got, ok := l.Match(c.method, c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("Match(%s %s) = %q,%v; want %q,%v", c.method, c.path, got, ok, c.want, c.ok)
		}
	}
	var empty List
	if _, ok := empty.Match("GET", "/v1/customers"); ok {
		t.Error("an empty allowlist allowed a call")
	}
}

// TestEveryAcceptedEntryMatches is the property the key API and the gate
// disagreed on before they shared this package: an entry that is accepted
// when a key is issued matches the calls it names, with any one segment in
// place of each "*".
func TestEveryAcceptedEntryMatches(t *testing.T) {
	for _, e := range []string{"GET /v1/customers/*", "POST /v1/payment_intents", "HEAD /*", "OPTIONS /v1/*/*",
		"POST /2010-04-01/Accounts/*/Messages.json", "PATCH /a-b_c.d~e/f:g@h/!$&'()+,;="} {
		l, err := Parse([]string{e})
		if err != nil {
			t.Fatalf("Parse(%q): %v", e, err)
		}
		method, path, _ := strings.Cut(e, " ")
		call := strings.ReplaceAll(path, "*", "x1")
		if got, ok := l.Match(method, call); !ok || got != e {
			t.Errorf("%q does not match %s %s (got %q, %v)", e, method, call, got, ok)
		}
	}
}

func TestParseNamesTheBadEntry(t *testing.T) {
	_, err := Parse([]string{"GET /v1/customers/*", "GET /v1/customers/"})
	if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "ends with /") {
		t.Fatalf("Parse: %v; want entry 1 named, and why", err)
	}
}

// TestCompileKeepsTheValidEntries: a stored allowlist with one entry an
// older version accepted still allows its valid entries, and reports the
// other.
func TestCompileKeepsTheValidEntries(t *testing.T) {
	l, errs := Compile([]string{"GET /v1/customers/", "POST /v1/payment_intents"})
	if len(errs) != 1 {
		t.Fatalf("errors %v; want one", errs)
	}
	if _, ok := l.Match("POST", "/v1/payment_intents"); !ok {
		t.Error("the valid entry does not match")
	}
	if _, ok := l.Match("GET", "/v1/customers"); ok {
		t.Error("the invalid entry matched")
	}
}

func TestCovers(t *testing.T) {
	policy, err := Parse([]string{"POST /v1/payment_intents", "GET /v1/customers/*", "POST /v1/payment_intents/*/confirm"})
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

// FuzzMatch: whatever method and path, a match is an entry whose method is
// the call's and whose every literal segment equals the path's.
func FuzzMatch(f *testing.F) {
	for _, p := range []string{"/v1/customers/cus_1", "/v1//x", "/v1/customers/", "/v1/customers/a/b", "/"} {
		f.Add("GET", p)
	}
	l, err := Parse([]string{"GET /v1/customers/*", "POST /v1/payment_intents", "GET /v1/*/x/*"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		entry, ok := l.Match(method, path)
		if !ok {
			return
		}
		m, pattern, _ := strings.Cut(entry, " ")
		want := strings.Split(pattern, "/")
		got := strings.Split(path, "/")
		if m != method || len(want) != len(got) {
			t.Fatalf("%s %q matched %q", method, path, entry)
		}
		for i := range want {
			if (want[i] == "*" && got[i] == "") || (want[i] != "*" && want[i] != got[i]) {
				t.Fatalf("%s %q matched %q", method, path, entry)
			}
		}
	})
}
