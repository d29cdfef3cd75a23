package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keybrake/keybrake/money"
)

// Bounds on what rules may say, so that a key's rules stay small to store,
// cache and check, and the ledger's per-key rate log stays short.
const (
	MaxRateCalls    = 10_000         // a rate's N
	MinRateWindow   = time.Second    // a rate's shortest window
	MaxRateWindow   = 24 * time.Hour // and its longest
	MaxSubjects     = 16             // subjects in allow
	MaxAllowEntries = 1_000          // entries in one allow list
	MaxValueBytes   = 256            // one allow entry or subject name
	MaxCallsLimit   = 1_000_000_000  // max_calls
)

// FieldError is a rule the parser refuses: Field names it as the API shows
// it ("rules.rate").
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// wire is the JSON shape of rules.
type wire struct {
	MaxCallUSD json.RawMessage     `json:"max_call_usd,omitempty"`
	MaxCalls   json.RawMessage     `json:"max_calls,omitempty"`
	Rate       string              `json:"rate,omitempty"`
	Allow      map[string][]string `json:"allow,omitempty"`
	OncePer    string              `json:"once_per,omitempty"`
}

// Parse reads rules from JSON, validating every field; field prefixes the
// names in its errors ("rules", "policy.rules"). Absent or null is nil.
func Parse(field string, raw json.RawMessage) (*Rules, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var w wire
	if err := dec.Decode(&w); err != nil {
		return nil, fieldErr(field, "must be an object with max_call_usd, max_calls, rate, allow and once_per (%s)", jsonReason(err))
	}
	r := &Rules{}
	var err error
	if r.MaxCallUSD, err = parseUSD(field+"."+RuleMaxCallUSD, w.MaxCallUSD); err != nil {
		return nil, err
	}
	if r.MaxCalls, err = parseCount(field+"."+RuleMaxCalls, w.MaxCalls); err != nil {
		return nil, err
	}
	if w.Rate != "" {
		rate, err := ParseRate(w.Rate)
		if err != nil {
			return nil, fieldErr(field+"."+RuleRate, "%v", err)
		}
		r.Rate = &rate
	}
	if w.Allow != nil {
		if r.Allow, err = parseAllow(field+"."+RuleAllow, w.Allow); err != nil {
			return nil, err
		}
	}
	if w.OncePer != "" {
		if err := checkSubjectName(field+"."+RuleOncePer, w.OncePer); err != nil {
			return nil, err
		}
		r.OncePer = w.OncePer
	}
	return r, nil
}

func jsonReason(err error) string {
	s := err.Error()
	return strings.TrimPrefix(s, "json: ")
}

func parseUSD(field string, raw json.RawMessage) (*money.Micros, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fieldErr(field, "must be a number of US dollars")
		}
	}
	m, err := money.ParseUSD(s)
	if err != nil || m <= 0 {
		return nil, fieldErr(field, "must be a positive number of US dollars with at most 6 decimals, up to %d", money.MaxUSD)
	}
	return &m, nil
}

func parseCount(field string, raw json.RawMessage) (*int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 1 || n > MaxCallsLimit {
		return nil, fieldErr(field, "must be a whole number from 1 to %d", MaxCallsLimit)
	}
	return &n, nil
}

// ParseRate reads "N/window": N calls in any trailing window, the window a
// Go duration ("30/1m", "5/10s", "100/1h"); a bare unit means one of it
// ("30/m"), and "d" is 24h.
func ParseRate(s string) (Rate, error) {
	bad := fmt.Errorf("rate %q must be N/window, e.g. 30/1m: N from 1 to %d, a window from %s to %s", s, MaxRateCalls, MinRateWindow, MaxRateWindow)
	n, win, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, bad
	}
	calls, err := strconv.ParseInt(n, 10, 64)
	if err != nil || calls < 1 || calls > MaxRateCalls || strings.HasPrefix(n, "+") {
		return Rate{}, bad
	}
	if win != "" && strings.Trim(win[:1], "0123456789") != "" {
		win = "1" + win
	}
	var d time.Duration
	if strings.HasSuffix(win, "d") {
		days, err := strconv.Atoi(strings.TrimSuffix(win, "d"))
		if err != nil || days < 1 || days > 1 {
			return Rate{}, bad // MaxRateWindow is one day
		}
		d = time.Duration(days) * 24 * time.Hour
	} else if d, err = time.ParseDuration(win); err != nil {
		return Rate{}, bad
	}
	if d < MinRateWindow || d > MaxRateWindow || d%time.Second != 0 {
		return Rate{}, bad
	}
	return Rate{Calls: calls, Window: d}, nil
}

// String writes a rate as ParseRate reads it, in the largest whole unit.
func (r Rate) String() string {
	w := r.Window
	switch {
	case w%time.Hour == 0:
		return fmt.Sprintf("%d/%dh", r.Calls, w/time.Hour)
	case w%time.Minute == 0:
		return fmt.Sprintf("%d/%dm", r.Calls, w/time.Minute)
	default:
		return fmt.Sprintf("%d/%ds", r.Calls, w/time.Second)
	}
}

func parseAllow(field string, in map[string][]string) (map[string][]string, error) {
	if len(in) > MaxSubjects {
		return nil, fieldErr(field, "may name at most %d subjects", MaxSubjects)
	}
	out := make(map[string][]string, len(in))
	for subject, list := range in {
		f := field + "." + subject
		if err := checkSubjectName(f, subject); err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, fieldErr(f, "must list at least one value (a subject no call may name is better said by not issuing the key)")
		}
		if len(list) > MaxAllowEntries {
			return nil, fieldErr(f, "may list at most %d values", MaxAllowEntries)
		}
		var vals []string
		for i, v := range list {
			if err := checkValue(fmt.Sprintf("%s[%d]", f, i), v); err != nil {
				return nil, err
			}
			v = Canonical(subject, v)
			if !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
		}
		out[subject] = vals
	}
	return out, nil
}

// ValidSubjectName reports whether s is a subject name rules accept:
// snake_case, as customer or to_country.
func ValidSubjectName(s string) bool { return checkSubjectName("", s) == nil }

// checkSubjectName accepts snake_case names: customer, to_country.
func checkSubjectName(field, s string) error {
	if s == "" || len(s) > 64 {
		return fieldErr(field, "must be a subject name of 1 to 64 characters")
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || (i > 0 && c >= '0' && c <= '9')) {
			return fieldErr(field, "subject %q must be snake_case (a-z, 0-9, _), e.g. customer or to_country", s)
		}
	}
	return nil
}

func checkValue(field, v string) error {
	if v == "" || len(v) > MaxValueBytes || !utf8.ValidString(v) {
		return fieldErr(field, "must be a value of 1 to %d bytes of UTF-8", MaxValueBytes)
	}
	for _, c := range v {
		if !unicode.IsPrint(c) || unicode.IsSpace(c) {
			return fieldErr(field, "must contain only printable characters and no spaces")
		}
	}
	if strings.Count(v, "*") > 1 || (strings.Contains(v, "*") && !strings.HasSuffix(v, "*")) {
		return fieldErr(field, "may contain * only at its end, as a prefix match (+1415*)")
	}
	return nil
}

// Canonical is a subject value as rules compare it: country and currency
// codes in the case their standards use (US; usd, as Stripe writes
// currencies), email addresses and domains in lower case. Vendors read
// subjects into the same form.
func Canonical(subject, v string) string {
	switch subject {
	case "to_country", "country":
		return strings.ToUpper(v)
	case "currency", "recipient", "recipient_domain":
		return strings.ToLower(v)
	}
	return v
}

// MarshalJSON writes rules in the shape Parse reads.
func (r Rules) MarshalJSON() ([]byte, error) {
	type out struct {
		MaxCallUSD *money.Micros       `json:"max_call_usd,omitempty"`
		MaxCalls   *int64              `json:"max_calls,omitempty"`
		Rate       string              `json:"rate,omitempty"`
		Allow      map[string][]string `json:"allow,omitempty"`
		OncePer    string              `json:"once_per,omitempty"`
	}
	o := out{MaxCallUSD: r.MaxCallUSD, MaxCalls: r.MaxCalls, Allow: r.Allow, OncePer: r.OncePer}
	if r.Rate != nil {
		o.Rate = r.Rate.String()
	}
	return json.Marshal(o)
}

// UnmarshalJSON reads rules as Parse does.
func (r *Rules) UnmarshalJSON(b []byte) error {
	p, err := Parse("rules", b)
	if err != nil {
		return err
	}
	if p == nil {
		*r = Rules{}
		return nil
	}
	*r = *p
	return nil
}
