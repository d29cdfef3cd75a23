package gate

import (
	"net/http"

	"github.com/keybrake/keybrake/ledger"
)

// fit bounds the request to what the ledger reserved (a Twilio call's
// TimeLimit, a declared rule's bound field such as max_tokens), whether that
// is the whole estimate or less: every reservation bounds the call's cost.
// A replay reserved nothing and is sent as its original was.
func (g *Gate) fit(r *http.Request, c *call) *refusal {
	if c.estimate.Fit == nil || c.reservation.Outcome != ledger.OutcomeForwarded {
		return nil
	}
	reserved := c.reservation.Reserved
	body, err := c.estimate.Fit(reserved)
	if err != nil {
		return estimateRefusal(err)
	}
	c.estimate.Cost = reserved
	setBody(r, body)
	return nil
}
