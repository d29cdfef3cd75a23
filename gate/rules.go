package gate

import (
	"net/http"

	"github.com/keybrake/keybrake/vendors"
)

// rules is the rules stage, between pricing and the reservation. A
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
func (g *Gate) rules(_ *http.Request, c *call) *refusal {
	if !c.estimate.MovesMoney() {
		return nil
	}
	c.movesMoney = true
	rs := c.key.Rules
	if d := rs.Check(c.estimate.Subjects, c.estimate.Cost); d != nil {
		return ruleRefusal(d.Rule, d.Message, 0)
	}
	if rs != nil && rs.OncePer != "" {
		c.oncePer, c.onceValues = rs.OncePer, rs.OnceValues(c.estimate.Subjects)
	}
	return nil
}

// subjectRefusal is the refusal by the key's allow or once_per rules of a
// call whose cost is unknown, refused anyway: a call to a destination the
// key may not reach (+882…) is told so, rather than that its price is
// unknown.
func subjectRefusal(c *call, est vendors.Estimate) *refusal {
	if d := c.key.Rules.Check(est.Subjects, 0); d != nil {
		return ruleRefusal(d.Rule, d.Message, 0)
	}
	return nil
}
