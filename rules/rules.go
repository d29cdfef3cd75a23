// Package rules holds what a vault key may do beyond dollars: a maximum per
// call, how many calls and how fast, which subjects (customers, numbers,
// recipients) a call may name, and each subject value once.
//
// It parses and validates rules as the key API takes them, tells whether one
// set of rules is narrower than another (a token's policy bounds the keys it
// issues), and checks the stateless rules (max_call_usd, allow, and that the
// subject once_per names is there) against a call's subjects. The stateful
// rules (max_calls, rate, once_per) are decided by the ledger in the same
// atomic step as the reservation. Nothing here knows Caddy or a ledger.
package rules

import (
	"time"

	"github.com/keybrake/keybrake/money"
)

// Rule names, as X-Keybrake-Rule, the audit and policy violations name them.
const (
	RuleMaxCallUSD = "max_call_usd"
	RuleMaxCalls   = "max_calls"
	RuleRate       = "rate"
	RuleAllow      = "allow"
	RuleOncePer    = "once_per"
)

// Names lists every rule name, in the order Check and the ledger try them.
var Names = []string{RuleMaxCallUSD, RuleAllow, RuleOncePer, RuleMaxCalls, RuleRate}

// Subjects are what a call names, read from the request as the vendor reads
// it: subject name (customer, to_country, recipient...) to its values. A
// subject a call does not carry is absent (or empty).
type Subjects map[string][]string

// Rules are a key's rules, or a policy's bound on its keys' rules. A zero
// Rules restricts nothing. Unset fields (nil, empty) do not restrict.
type Rules struct {
	// MaxCallUSD: no single call may reserve more.
	MaxCallUSD *money.Micros
	// MaxCalls: money-moving calls forwarded over the key's life.
	MaxCalls *int64
	// Rate: at most Rate.Calls money-moving calls forwarded in any trailing
	// Rate.Window.
	Rate *Rate
	// Allow: each named subject of a call must match one of its list's
	// entries (an entry ending in "*" matches every value it prefixes).
	Allow map[string][]string
	// OncePer: at most one money-moving forwarded call per value of this
	// subject.
	OncePer string
}

// Rate is "N calls in any trailing window".
type Rate struct {
	Calls  int64
	Window time.Duration
}

// IsZero reports whether r restricts nothing.
func (r *Rules) IsZero() bool {
	return r == nil || (r.MaxCallUSD == nil && r.MaxCalls == nil && r.Rate == nil && len(r.Allow) == 0 && r.OncePer == "")
}

// Stateful reports whether r has a rule the ledger decides (max_calls,
// rate, once_per).
func (r *Rules) Stateful() bool {
	return r != nil && (r.MaxCalls != nil || r.Rate != nil || r.OncePer != "")
}

// Denial is a refusal by a rule.
type Denial struct {
	Rule string // one of the Rule… names
	// Subject is the subject an allow or once_per rule named, when the
	// refusal is about one.
	Subject string
	Message string // for the client, in the vendor's error format
	// RetryAfter, for the rate rule, is when a slot frees.
	RetryAfter time.Duration
}

func (d *Denial) Error() string { return d.Message }
