package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/money"
)

func mustParse(t *testing.T, s string) *Rules {
	t.Helper()
	r, err := Parse("rules", json.RawMessage(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return r
}

func TestParseDesignShape(t *testing.T) {
	r := mustParse(t, `{"max_call_usd": 25, "max_calls": 60, "rate": "30/1m",
		"allow": {"customer": ["cus_A", "cus_B", "cus_A"], "to_country": ["us", "CA"], "recipient_domain": ["Example.com"]},
		"once_per": "customer"}`)
	if *r.MaxCallUSD != 25*money.PerDollar || *r.MaxCalls != 60 || r.Rate.Calls != 30 || r.Rate.Window != time.Minute || r.OncePer != "customer" {
		t.Fatalf("parsed %+v", r)
	}
	if got := strings.Join(r.Allow["customer"], ","); got != "cus_A,cus_B" {
		t.Errorf("customer list %q, want duplicates dropped", got)
	}
	if got := strings.Join(r.Allow["to_country"], ","); got != "US,CA" {
		t.Errorf("to_country %q, want upper case", got)
	}
	if got := r.Allow["recipient_domain"][0]; got != "example.com" {
		t.Errorf("recipient_domain %q, want lower case", got)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, string(b))
	if string(mustJSON(t, again)) != string(b) {
		t.Errorf("round trip %s != %s", mustJSON(t, again), b)
	}
	if !strings.Contains(string(b), `"max_call_usd":25`) || !strings.Contains(string(b), `"rate":"30/1m"`) {
		t.Errorf("marshalled %s", b)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ in, field string }{
		{`[]`, "rules"},
		{`{"max_calls": 0}`, "rules.max_calls"},
		{`{"max_calls": -1}`, "rules.max_calls"},
		{`{"max_calls": 1.5}`, "rules.max_calls"},
		{`{"max_calls": 1e3}`, "rules.max_calls"},
		{`{"max_call_usd": 0}`, "rules.max_call_usd"},
		{`{"max_call_usd": -3}`, "rules.max_call_usd"},
		{`{"max_call_usd": 0.0000001}`, "rules.max_call_usd"},
		{`{"max_call_usd": 1e2}`, "rules.max_call_usd"},
		{`{"rate": "30"}`, "rules.rate"},
		{`{"rate": "0/1m"}`, "rules.rate"},
		{`{"rate": "-1/1m"}`, "rules.rate"},
		{`{"rate": "+1/1m"}`, "rules.rate"},
		{`{"rate": "10/0s"}`, "rules.rate"},
		{`{"rate": "10/500ms"}`, "rules.rate"},
		{`{"rate": "10/1500ms"}`, "rules.rate"},
		{`{"rate": "10/2d"}`, "rules.rate"},
		{`{"rate": "10/25h"}`, "rules.rate"},
		{`{"rate": "99999999/1m"}`, "rules.rate"},
		{`{"rate": "10/-1m"}`, "rules.rate"},
		{`{"allow": {"customer": []}}`, "rules.allow.customer"},
		{`{"allow": {"Customer": ["x"]}}`, "rules.allow.Customer"},
		{`{"allow": {"customer": [""]}}`, "rules.allow.customer[0]"},
		{`{"allow": {"customer": ["a b"]}}`, "rules.allow.customer[0]"},
		{`{"allow": {"to": ["+1*415"]}}`, "rules.allow.to[0]"},
		{`{"allow": {"to": ["+1**"]}}`, "rules.allow.to[0]"},
		{`{"allow": {"customer": ["` + strings.Repeat("x", 300) + `"]}}`, "rules.allow.customer[0]"},
		{`{"once_per": "Customer"}`, "rules.once_per"},
		{`{"once_per": "1x"}`, "rules.once_per"},
		{`{"surprise": 1}`, "rules"},
	} {
		_, err := Parse("rules", json.RawMessage(tc.in))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Parse(%s) = %v, want a FieldError on %s", tc.in, err, tc.field)
		}
	}
	if r, err := Parse("rules", nil); r != nil || err != nil {
		t.Errorf("absent rules = %v, %v", r, err)
	}
	if r, err := Parse("rules", json.RawMessage(" null ")); r != nil || err != nil {
		t.Errorf("null rules = %v, %v", r, err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"30/1m": {30, time.Minute}, "30/m": {30, time.Minute}, "5/10s": {5, 10 * time.Second},
		"100/1h": {100, time.Hour}, "1/1d": {1, 24 * time.Hour}, "2/90s": {2, 90 * time.Second},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
		again, err := ParseRate(got.String())
		if err != nil || again != got {
			t.Errorf("ParseRate(%q.String() = %q) = %v, %v", in, got.String(), again, err)
		}
	}
}

func TestCheck(t *testing.T) {
	r := mustParse(t, `{"max_call_usd": "10.5", "allow": {"to": ["+1415*", "+15550001111"], "to_country": ["US"]}, "once_per": "to"}`)
	ok := Subjects{"to": {"+14155550123"}, "to_country": {"US"}}
	if d := r.Check(ok, 10_500_000); d != nil {
		t.Fatalf("allowed call denied: %v", d)
	}
	for name, tc := range map[string]struct {
		s    Subjects
		est  money.Micros
		rule string
	}{
		"over max_call_usd":      {ok, 10_500_001, RuleMaxCallUSD},
		"to outside prefix":      {Subjects{"to": {"+14165550123"}, "to_country": {"US"}}, 1, RuleAllow},
		"prefix is not exact":    {Subjects{"to": {"+1555000111"}, "to_country": {"US"}}, 1, RuleAllow},
		"to_country missing":     {Subjects{"to": {"+14155550123"}}, 1, RuleAllow},
		"one of many recipients": {Subjects{"to": {"+14155550123", "+442071838750"}, "to_country": {"US"}}, 1, RuleAllow},
		"country not listed":     {Subjects{"to": {"+14155550123"}, "to_country": {"PR"}}, 1, RuleAllow},
		"no subjects at all":     {nil, 1, RuleAllow},
	} {
		d := r.Check(tc.s, tc.est)
		if d == nil || d.Rule != tc.rule {
			t.Errorf("%s: Check = %v, want %s", name, d, tc.rule)
		}
	}
	once := mustParse(t, `{"once_per": "customer"}`)
	if d := once.Check(Subjects{"currency": {"usd"}}, 1); d == nil || d.Rule != RuleOncePer {
		t.Errorf("once_per without its subject = %v", d)
	}
	if got := once.OnceValues(Subjects{"customer": {"cus_A", "cus_B", "cus_A"}}); strings.Join(got, ",") != "cus_A,cus_B" {
		t.Errorf("OnceValues = %v", got)
	}
	var none *Rules
	if none.Check(nil, 1<<60) != nil || none.Stateful() || !none.IsZero() {
		t.Error("nil rules restrict")
	}
}

func TestNarrowerThan(t *testing.T) {
	bound := mustParse(t, `{"max_call_usd": 25, "max_calls": 60, "rate": "30/1m",
		"allow": {"customer": ["cus_A", "cus_B"], "to": ["+1*"]}, "once_per": "customer"}`)
	narrow := mustParse(t, `{"max_call_usd": 10, "max_calls": 5, "rate": "10/1m",
		"allow": {"customer": ["cus_A"], "to": ["+1415*", "+12125550000"], "to_country": ["US"]}, "once_per": "customer"}`)
	if w, ok := narrow.NarrowerThan(bound); !ok {
		t.Fatalf("narrower rules called wider on %s", w)
	}
	if _, ok := bound.NarrowerThan(bound); !ok {
		t.Error("rules not narrower than themselves")
	}
	for name, tc := range map[string]struct{ change, wider string }{
		"no max_call_usd":   {`"max_call_usd": null`, RuleMaxCallUSD},
		"higher max call":   {`"max_call_usd": 25.000001`, RuleMaxCallUSD},
		"more calls":        {`"max_calls": 61`, RuleMaxCalls},
		"faster rate":       {`"rate": "31/1m"`, RuleRate},
		"shorter window":    {`"rate": "30/59s"`, RuleRate},
		"split window":      {`"rate": "16/30s"`, RuleRate},
		"customer added":    {`"allow": {"customer": ["cus_A", "cus_C"], "to": ["+1*"]}`, "allow.customer"},
		"customer dropped":  {`"allow": {"to": ["+1*"]}`, "allow.customer"},
		"wider prefix":      {`"allow": {"customer": ["cus_A"], "to": ["+*"]}`, "allow.to"},
		"prefix over exact": {`"allow": {"customer": ["cus_A*"], "to": ["+1*"]}`, "allow.customer"},
		"other once_per":    {`"once_per": "currency"`, RuleOncePer},
	} {
		base := map[string]json.RawMessage{}
		if err := json.Unmarshal(mustJSON(t, narrow), &base); err != nil {
			t.Fatal(err)
		}
		var one map[string]json.RawMessage
		if err := json.Unmarshal([]byte("{"+tc.change+"}"), &one); err != nil {
			t.Fatal(err)
		}
		for k, v := range one {
			base[k] = v
		}
		r := mustParse(t, string(mustJSON(t, base)))
		if w, ok := r.NarrowerThan(bound); ok || w != tc.wider {
			t.Errorf("%s: NarrowerThan = %q, %v; want %q", name, w, ok, tc.wider)
		}
	}
	if _, ok := (*Rules)(nil).NarrowerThan(nil); !ok {
		t.Error("nil within nil")
	}
	if w, ok := (*Rules)(nil).NarrowerThan(bound); ok || w != RuleMaxCallUSD {
		t.Errorf("no rules within a bound = %q %v", w, ok)
	}
	// A rate over a longer window can still be narrower: 10/2m allows at
	// most 10 in any minute.
	if _, ok := (&Rules{Rate: &Rate{10, 2 * time.Minute}}).NarrowerThan(&Rules{Rate: &Rate{10, time.Minute}}); !ok {
		t.Error("10/2m not within 10/1m")
	}
}

// TestMatchesNeverPanics runs Matches and NarrowerThan over awkward values.
func TestMatchesNeverPanics(t *testing.T) {
	vals := []string{"", "*", "+", "+1*", "+1", "é*", "\xff", strings.Repeat("a", 300), "a*b"}
	for _, e := range vals {
		for _, v := range vals {
			_ = Matches([]string{e}, v)
			_ = covers([]string{e}, v)
		}
	}
	if Matches([]string{"+1*"}, "+") || !Matches([]string{"*"}, "") {
		t.Error("prefix semantics")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"rate":"1/1s"}`, `{"allow":{"a":["b*"]}}`, `{"max_call_usd":"1.5"}`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse("rules", json.RawMessage(s))
		if err != nil || r == nil {
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("rules", b)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", b, err)
		}
		if _, ok := again.NarrowerThan(r); !ok {
			t.Fatalf("%s not narrower than itself", b)
		}
	})
}
