package ledger

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/keybrake/keybrake/rules"
)

// StoredRules are a key's rules as both backends store them: the rules as
// JSON, for reading them back, and the stateful ones in columns Reserve
// reads under the key's lock.
type StoredRules struct {
	JSON         string // "" when the key has no rules
	MaxCalls     *int64
	RateCalls    *int64
	RateWindowUS *int64
	OncePer      string
}

// StoreRules is how r is stored.
func StoreRules(r *rules.Rules) StoredRules {
	if r.IsZero() {
		return StoredRules{}
	}
	b, _ := json.Marshal(r) // Rules always marshal
	s := StoredRules{JSON: string(b), MaxCalls: r.MaxCalls, OncePer: r.OncePer}
	if r.Rate != nil {
		n, w := r.Rate.Calls, r.Rate.Window.Microseconds()
		s.RateCalls, s.RateWindowUS = &n, &w
	}
	return s
}

// LoadRules reads rules stored by StoreRules; nil for none. Rules the
// current version cannot read (none are ever stored) read as none here,
// and Reserve still holds the stateful ones from their columns.
func LoadRules(stored string) *rules.Rules {
	if stored == "" {
		return nil
	}
	r, err := rules.Parse("rules", json.RawMessage(stored))
	if err != nil || r.IsZero() {
		return nil
	}
	return r
}

// RetryAfterUS turns a rate refusal's wait in microseconds into a duration.
func RetryAfterUS(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// RuleOutcome is the outcome a call is counted under in the summaries'
// rollups and refusal buckets: "rule_denied:once_per" for a refusal by a
// rule, so that refusals are counted by rule; the outcome itself
// otherwise. The migrations' rollup triggers write the same.
func RuleOutcome(outcome, rule string) string {
	if rule == "" {
		return outcome
	}
	return outcome + ":" + rule
}

// SplitRuleOutcome reads a rollup's outcome back into the outcome and the
// rule.
func SplitRuleOutcome(s string) (outcome, rule string) {
	outcome, rule, _ = strings.Cut(s, ":")
	return outcome, rule
}
