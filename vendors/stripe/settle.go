package stripe

import (
	"encoding/json"
	"net/http"

	"github.com/keybrake/keybrake/vendors"
)

// Settle implements vendors.Vendor. A 4xx (declines, validation errors,
// idempotency conflicts) moved no money; a 2xx did, and its cost is read
// from the object Stripe answered with:
//
//   - a create or a refund: the object's amount in its currency;
//   - a call on an existing PaymentIntent or Charge: what the object has
//     now moved or holds (captured, or authorised and not yet captured),
//     less what the key had counted for it before the call;
//   - a free call: nothing.
//
// When the answer cannot be read the estimate stands. Anything else than a
// 2xx or 4xx is ambiguous.
func (v *Vendor) Settle(r *http.Request, status int, header http.Header, body []byte, est vendors.Estimate) vendors.Result {
	res := vendors.Result{Decision: vendors.StatusDecision(status), Cost: est.Cost}
	if res.Decision != vendors.DecisionSettle {
		res.Cost = 0
		return res
	}
	var obj object
	if json.Unmarshal(body, &obj) != nil {
		// A 2xx we cannot read (truncated capture of a large list, say):
		// the estimate stands.
		return res
	}
	res.TxnID, res.Amount, res.Currency = obj.ID, obj.Amount, obj.Currency
	kind := classify(r.Method, r.URL.Path)
	if kind == free || est.Cost == 0 && est.Object == "" || obj.Amount == nil || obj.Currency == "" {
		return res
	}
	moved := *obj.Amount
	switch kind {
	case intentUpdate, intentConfirm, intentIncrement:
		// The intent's amount: authorised or captured, it is counted.
		moved = max(*obj.Amount, obj.AmountReceived)
	case intentCapture:
		moved = max(obj.AmountReceived, obj.AmountCapturable)
	case chargeCapture:
		moved = obj.AmountCaptured
	}
	usd, err := v.rates.ToUSD(moved, obj.Currency)
	if err != nil {
		return res
	}
	if est.Object != "" {
		usd = max(usd-est.Counted, 0)
	}
	res.Cost = usd
	return res
}
