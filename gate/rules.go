package gate

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// HeaderRule names the rule that refused a call (X-Keybrake-Rule:
// once_per).
const HeaderRule = "X-Keybrake-Rule"

// checkRules is the rules stage, between pricing and the reservation. A
// call the vendor priced as moving money is checked against the key's
// stateless rules (max_call_usd, allow, and that it carries the subject
// once_per names) and told to the ledger as one its stateful rules count
// (max_calls, rate, once_per), with its once_per values. Free calls are
// never refused by a rule.
//
// The rules are the key's as cached; the ledger holds the stateful ones
// as stored, and a call whose once_per values were read for another
// subject than the stored one is refused there (a cache older than a
// PATCH fails closed).
func (g *Gate) checkRules(c *call) *refusal {
	if !c.estimate.MovesMoney() {
		return nil
	}
	c.movesMoney = true
	rs := c.key.Rules
	if d := rs.Check(c.estimate.Subjects, c.estimate.Cost); d != nil {
		f := ruleRefusal(d.Rule, d.Message, 0)
		f.record = true
		return f
	}
	c.oncePer, c.onceValues = "", nil
	if rs != nil && rs.OncePer != "" {
		c.oncePer, c.onceValues = rs.OncePer, rs.OnceValues(c.estimate.Subjects)
	}
	return nil
}

// ruleRefusal is the answer to a call a rule refused, in the vendor's
// format: 403 keybrake_rule_denied, not retried by the SDKs; for rate, 429
// keybrake_rate_limited with Retry-After, the one refusal an SDK may retry
// (nothing was sent or reserved); for max_calls, 429 keybrake_cap_hit, a
// cap on calls that waiting does not cure.
func ruleRefusal(rule, message string, retryAfter time.Duration) *refusal {
	f := &refusal{status: http.StatusForbidden, code: "keybrake_rule_denied", message: message,
		outcome: ledger.OutcomeRuleDenied, rule: rule}
	switch rule {
	case rules.RuleRate:
		f.status, f.code, f.retryable, f.retryAfter = http.StatusTooManyRequests, "keybrake_rate_limited", true, retryAfter
	case rules.RuleMaxCalls:
		f.status, f.code, f.capHit = http.StatusTooManyRequests, "keybrake_cap_hit", true
	}
	return f
}

// ledgerRuleRefusal is the answer to a call the ledger's rules refused
// (Reserve has recorded it).
func ledgerRuleRefusal(res ledger.ReserveResult) *refusal {
	var msg string
	switch res.Rule {
	case rules.RuleRate:
		msg = "This vault key's rate rule allows no more calls just now. Keybrake forwarded nothing; retry after " +
			retryAfterSeconds(res.RetryAfter) + " seconds."
	case rules.RuleMaxCalls:
		msg = "This vault key has made all the calls its max_calls rule allows. Keybrake forwarded nothing; retrying will not help."
	case rules.RuleOncePer:
		msg = "This vault key allows one call per value of its once_per subject, and this call names one already used. " +
			"Keybrake forwarded nothing; retrying will not help."
	default:
		msg = "A rule of this vault key refuses this call (" + res.Rule + ")."
	}
	return ruleRefusal(res.Rule, msg, res.RetryAfter)
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up, at
// least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}
