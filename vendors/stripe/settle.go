package stripe

import (
	"encoding/json"
	"net/http"

	"github.com/keybrake/keybrake/vendors"
)

// response holds the fields of a Stripe object Keybrake reads.
type response struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Amount   *int64 `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
}

// Settle implements vendors.Vendor. A 2xx moved money (for a priced
// endpoint); its real cost is the object's amount in its currency, falling
// back to the estimate when the object does not say. A 4xx (declines,
// validation errors, idempotency conflicts) moved none. Anything else is
// ambiguous.
func (v *Vendor) Settle(r *http.Request, status int, _ http.Header, body []byte, est vendors.Estimate) vendors.Result {
	res := vendors.Result{Decision: vendors.StatusDecision(status), Cost: est.Cost}
	if res.Decision != vendors.DecisionSettle {
		res.Cost = 0
		return res
	}
	var obj response
	if json.Unmarshal(body, &obj) != nil {
		// A 2xx we cannot read (truncated capture of a large list, say):
		// the estimate stands.
		return res
	}
	res.TxnID = obj.ID
	res.Amount = obj.Amount
	res.Currency = obj.Currency
	rl := findRule(r.Method, r.URL.Path)
	if rl == nil || rl.pricing != amountCurrency || est.Cost == 0 || obj.Amount == nil || obj.Currency == "" {
		return res
	}
	if cost, err := v.rates.ToUSD(*obj.Amount, obj.Currency); err == nil {
		res.Cost = cost
	}
	return res
}
