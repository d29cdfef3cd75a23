package stripe

import (
	"net/http"
	"strings"
)

// pricing says how an endpoint's cost is told.
type pricing int

const (
	// unlisted: not on any list, so of unknown cost (the unknown_cost
	// policy applies; deny by default).
	unlisted pricing = iota
	// free: Stripe documents that it moves no money (docs/vendors.md).
	free
	// amountCurrency: the request's amount in its currency.
	amountCurrency
	// intentUpdate: an update of a PaymentIntent; when it changes amount
	// or currency, the intent's new value, less what the key counted for it.
	intentUpdate
	// intentConfirm: the intent's amount (looked up at Stripe), less what
	// the key counted for it.
	intentConfirm
	// intentCapture: what the intent will have captured (amount_to_capture
	// or, without it, all that is capturable), less what the key counted.
	intentCapture
	// intentIncrement: the intent's new authorised amount, less what the
	// key counted.
	intentIncrement
	// chargeCapture: what the charge will have captured, less what the key
	// counted for it.
	chargeCapture
	// refund: the amount refunded; without an amount, what remains
	// refundable on the charge or intent (looked up at Stripe).
	refund
)

// rule prices one endpoint. Path segments "*" match one segment.
type rule struct {
	method  string
	path    []string
	pricing pricing
}

// rules lists Stripe v1 endpoints that Keybrake prices or knows to be free.
// Every GET is free (a read moves no money). Any other call not listed here
// is of unknown cost: subscriptions, invoices, checkout sessions, payment
// links, quotes, treasury, issuing and the rest of Stripe's money-moving
// API follow the unknown_cost policy, deny by default.
var rules = []rule{
	// Money out, priced from the request.
	{"POST", segs("/v1/payment_intents"), amountCurrency},
	{"POST", segs("/v1/charges"), amountCurrency},
	{"POST", segs("/v1/transfers"), amountCurrency},
	{"POST", segs("/v1/payouts"), amountCurrency},
	{"POST", segs("/v1/topups"), amountCurrency},
	{"POST", segs("/v1/refunds"), refund},
	{"POST", segs("/v1/charges/*/refunds"), refund},
	{"POST", segs("/v1/charges/*/refund"), refund},

	// Money moved on an object that already exists, priced from the object
	// as Stripe has it (a lookup with the real secret) less what this key
	// has already counted for it.
	{"POST", segs("/v1/payment_intents/*"), intentUpdate},
	{"POST", segs("/v1/payment_intents/*/confirm"), intentConfirm},
	{"POST", segs("/v1/payment_intents/*/capture"), intentCapture},
	{"POST", segs("/v1/payment_intents/*/increment_authorization"), intentIncrement},
	{"POST", segs("/v1/charges/*/capture"), chargeCapture},

	// Free: objects that hold no money, and cancellations that give money
	// back. Each is in docs/vendors.md with its reason.
	{"POST", segs("/v1/payment_intents/*/cancel"), free},
	{"POST", segs("/v1/refunds/*"), free},
	{"POST", segs("/v1/refunds/*/cancel"), free},
	{"POST", segs("/v1/charges/*"), free},
	{"POST", segs("/v1/customers"), free},
	{"POST", segs("/v1/customers/*"), free},
	{"DELETE", segs("/v1/customers/*"), free},
	{"POST", segs("/v1/customers/*/sources"), free},
	{"DELETE", segs("/v1/customers/*/sources/*"), free},
	{"POST", segs("/v1/customers/*/tax_ids"), free},
	{"DELETE", segs("/v1/customers/*/tax_ids/*"), free},
	{"POST", segs("/v1/payment_methods"), free},
	{"POST", segs("/v1/payment_methods/*"), free},
	{"POST", segs("/v1/payment_methods/*/attach"), free},
	{"POST", segs("/v1/payment_methods/*/detach"), free},
	{"POST", segs("/v1/setup_intents"), free},
	{"POST", segs("/v1/setup_intents/*"), free},
	{"POST", segs("/v1/setup_intents/*/confirm"), free},
	{"POST", segs("/v1/setup_intents/*/cancel"), free},
	{"POST", segs("/v1/products"), free},
	{"POST", segs("/v1/products/*"), free},
	{"DELETE", segs("/v1/products/*"), free},
	{"POST", segs("/v1/prices"), free},
	{"POST", segs("/v1/prices/*"), free},
	{"POST", segs("/v1/coupons"), free},
	{"POST", segs("/v1/coupons/*"), free},
	{"DELETE", segs("/v1/coupons/*"), free},
	{"POST", segs("/v1/promotion_codes"), free},
	{"POST", segs("/v1/promotion_codes/*"), free},
	{"POST", segs("/v1/tax_rates"), free},
	{"POST", segs("/v1/tax_rates/*"), free},
	{"POST", segs("/v1/tokens"), free},
	{"POST", segs("/v1/webhook_endpoints"), free},
	{"POST", segs("/v1/webhook_endpoints/*"), free},
	{"DELETE", segs("/v1/webhook_endpoints/*"), free},
	{"POST", segs("/v1/transfers/*"), free},
	{"POST", segs("/v1/payouts/*"), free},
	{"POST", segs("/v1/payouts/*/cancel"), free},
}

func segs(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

func (r *rule) matches(method string, path []string) bool {
	if r.method != method || len(r.path) != len(path) {
		return false
	}
	for i, s := range r.path {
		if s != "*" && s != path[i] {
			return false
		}
	}
	return true
}

// classify returns how a call is priced. The most specific rule wins: a
// literal segment beats "*" (so /v1/payment_intents/search is no update).
func classify(method, path string) pricing {
	if method == http.MethodGet || method == http.MethodHead {
		return free
	}
	p := segs(path)
	best, bestLiterals := unlisted, -1
	for i := range rules {
		if !rules[i].matches(method, p) {
			continue
		}
		literals := 0
		for _, s := range rules[i].path {
			if s != "*" {
				literals++
			}
		}
		if literals > bestLiterals {
			best, bestLiterals = rules[i].pricing, literals
		}
	}
	return best
}
