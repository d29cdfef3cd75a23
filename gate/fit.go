package gate

import (
	"net/http"

	"github.com/keybrake/keybrake/ledger"
)

// fit bounds the request to what the ledger reserved, when that is less
// than the estimate (a Twilio call's TimeLimit). A replay reserved nothing
// and is sent as its original was.
func (g *Gate) fit(r *http.Request, c *call) *refusal {
	if c.estimate.Minimum == 0 || c.reservation.Outcome != ledger.OutcomeForwarded {
		return nil
	}
	reserved := c.reservation.Reserved
	body, err := c.estimate.Fit(reserved)
	if err != nil {
		return badRequest(err)
	}
	c.estimate.Cost = reserved
	setBody(r, body)
	return nil
}
