package simvendor

import (
	"net/http"
	"time"
)

// Endpoints that send money out of the account as soon as they are created.
// Each moves its amount; none can be "undone" in the simulator (reversals
// and cancellations are not simulated).
//
//   - POST /v1/transfers (amount, currency, destination):
//     https://docs.stripe.com/api/transfers/create
//   - POST /v1/payouts (amount, currency): https://docs.stripe.com/api/payouts/create
//   - POST /v1/treasury/outbound_payments and /v1/treasury/outbound_transfers
//     (amount, currency, financial_account): stubs that move the amount at
//     once, status "processing" (https://docs.stripe.com/api/treasury/outbound_payments).
//   - POST /v1/issuing/cards (cardholder, currency, type): a stub that
//     creates a card (status "active") and logs KindCardIssued; spending on
//     the card is not simulated (https://docs.stripe.com/api/issuing/cards/create).
func moveRoutes() []stripeRoute {
	return []stripeRoute{
		route(http.MethodPost, "/v1/transfers", moveCreate("tr", "transfer", "destination", KindTransfer)),
		route(http.MethodGet, "/v1/transfers/"+idPat, moveGet(func(a *stripeAccount) *store[obj] { return &a.transfers }, "transfer")),
		route(http.MethodPost, "/v1/payouts", moveCreate("po", "payout", "", KindPayout)),
		route(http.MethodGet, "/v1/payouts/"+idPat, moveGet(func(a *stripeAccount) *store[obj] { return &a.payouts }, "payout")),
		route(http.MethodPost, "/v1/treasury/outbound_payments", moveCreate("obp", "treasury.outbound_payment", "financial_account", KindTreasuryOutbound)),
		route(http.MethodPost, "/v1/treasury/outbound_transfers", moveCreate("obt", "treasury.outbound_transfer", "financial_account", KindTreasuryOutbound)),
		route(http.MethodGet, "/v1/treasury/outbound_payments/"+idPat, moveGet(func(a *stripeAccount) *store[obj] { return &a.treasury }, "treasury.outbound_payment")),
		route(http.MethodGet, "/v1/treasury/outbound_transfers/"+idPat, moveGet(func(a *stripeAccount) *store[obj] { return &a.treasury }, "treasury.outbound_transfer")),
		route(http.MethodPost, "/v1/issuing/cards", cardCreate),
		route(http.MethodGet, "/v1/issuing/cards/"+idPat, moveGet(func(a *stripeAccount) *store[obj] { return &a.cards }, "issuing.card")),
	}
}

func moveCreate(prefix, object, required string, kind Kind) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		amount, _, e := c.amountParam("amount", true)
		if e != nil {
			return nil, e
		}
		cur, e := c.currencyParam("currency", true)
		if e != nil {
			return nil, e
		}
		if required != "" && c.p.str(required) == "" {
			return nil, errMissing(required)
		}
		micros, e := c.micros(amount, cur)
		if e != nil {
			return nil, e
		}
		o := obj{"id": c.s.stripeID(prefix), "object": object, "amount": amount, "currency": cur,
			"metadata": mergeMetadata(nil, c.p), "created": c.now.Unix(), "livemode": false}
		switch kind {
		case KindTransfer:
			o["destination"] = c.p.str("destination")
			o["amount_reversed"], o["reversed"] = 0, false
			c.acct.transfers.put(o["id"].(string), o)
		case KindPayout:
			o["status"], o["method"] = "pending", "standard"
			o["arrival_date"] = c.now.Add(48 * time.Hour).Unix()
			c.acct.payouts.put(o["id"].(string), o)
		default:
			o["status"], o["financial_account"] = "processing", c.p.str("financial_account")
			c.acct.treasury.put(o["id"].(string), o)
		}
		c.record(kind, o["id"].(string), micros, amount, cur, object+" created")
		return o, nil
	}
}

func moveGet(pick func(*stripeAccount) *store[obj], object string) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		o, ok := pick(c.acct).get(c.m[1])
		if !ok || o["object"] != object {
			return nil, errNoSuch(object, c.m[1], "id")
		}
		return o, nil
	}
}

func cardCreate(c *stripeCall) (any, *stripeError) {
	for _, f := range []string{"cardholder", "currency", "type"} {
		if c.p.str(f) == "" {
			return nil, errMissing(f)
		}
	}
	o := obj{"id": c.s.stripeID("ic"), "object": "issuing.card", "cardholder": c.p.str("cardholder"),
		"currency": c.p.str("currency"), "type": c.p.str("type"), "status": "active", "last4": "0005",
		"metadata": mergeMetadata(nil, c.p), "created": c.now.Unix(), "livemode": false}
	c.acct.cards.put(o["id"].(string), o)
	c.record(KindCardIssued, o["id"].(string), 0, 0, c.p.str("currency"), "issuing card created")
	return o, nil
}
