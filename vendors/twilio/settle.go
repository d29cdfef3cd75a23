package twilio

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// resource holds the fields of a Twilio Message or Call Keybrake reads.
type resource struct {
	Sid       string          `json:"sid"`
	Price     json.RawMessage `json:"price"`
	PriceUnit string          `json:"price_unit"`
	Status    string          `json:"status"`
}

// price returns the resource's real cost: the absolute value of its price
// (Twilio reports charges as negative decimals, "-0.00830"), exactly, when
// it has one in US dollars. ok is false while the price is null or in
// another currency.
func (res *resource) price() (money.Micros, bool) {
	raw := bytes.TrimSpace(res.Price)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	if u := strings.TrimSpace(res.PriceUnit); u != "" && !strings.EqualFold(u, "USD") {
		return 0, false
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
	}
	if strings.TrimSpace(s) == "" {
		return 0, false
	}
	cost, err := money.ParseUSDCeil(s)
	if err != nil {
		return 0, false
	}
	return cost, true
}

// Settle implements vendors.Vendor.
func (v *Vendor) Settle(r *http.Request, status int, _ http.Header, body []byte, est vendors.Estimate) vendors.Result {
	dec := vendors.StatusDecision(status)
	if dec != vendors.DecisionSettle {
		return vendors.Result{Decision: dec}
	}
	switch kind, _ := classify(r.Method, r.URL.Path); kind {
	case kindMessage, kindCall, kindParticipant:
	default:
		if !est.Known {
			return vendors.Result{Decision: vendors.DecisionUnpriced}
		}
		return vendors.Result{Decision: vendors.DecisionSettle, Cost: est.Cost}
	}
	// Created: money will move, usually priced later.
	out := vendors.Result{Decision: vendors.DecisionUnpriced}
	var res resource
	if err := json.Unmarshal(body, &res); err != nil {
		return out
	}
	out.TxnID = txnID(res.Sid)
	if cost, ok := res.price(); ok {
		out.Decision, out.Cost = vendors.DecisionSettle, cost
	}
	return out
}

// txnID keeps a sid only if it looks like one (SM…, MM…, CA…).
func txnID(sid string) string {
	if len(sid) < 3 || len(sid) > 64 || !alnum(sid) {
		return ""
	}
	return sid
}
