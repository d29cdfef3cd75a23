package simvendor

import (
	"net/http"
	"strings"
	"time"
)

// Charges and refunds, after https://docs.stripe.com/api/charges and
// https://docs.stripe.com/api/refunds:
//
//   - POST /v1/charges (amount, currency, source or customer, capture
//     default true): captured funds move; capture=false places a hold that
//     POST /v1/charges/{id}/capture (amount ≤ the charge's amount) turns
//     into money, releasing the rest. An uncaptured charge lapses after 7
//     days (https://docs.stripe.com/charges/placing-a-hold).
//   - POST /v1/refunds (charge or payment_intent, amount default: all that
//     is left): the refunded amount counts as money moved. Refunding an
//     uncaptured charge only releases its hold.
//
// Simplification: tok_chargeDeclined is the only declining source.
type charge struct {
	id             string
	amount         int64
	amountCaptured int64
	amountRefunded int64
	currency       string
	captured       bool
	refunded       bool
	paymentIntent  string
	paymentMethod  string
	customer       string
	source         string
	metadata       map[string]string
	created        time.Time
	heldMicros     int64
	overcaptureMax int64
}

func (ch *charge) render() obj {
	card := obj{"brand": "visa", "last4": "4242"}
	if ch.overcaptureMax > 0 {
		status := "unavailable"
		if ch.overcaptureMax > ch.amount {
			status = "available"
		}
		card["overcapture"] = obj{"maximum_amount_capturable": ch.overcaptureMax, "status": status}
	}
	return obj{
		"id": ch.id, "object": "charge", "amount": ch.amount, "amount_captured": ch.amountCaptured,
		"amount_refunded": ch.amountRefunded, "currency": ch.currency, "captured": ch.captured,
		"refunded": ch.refunded, "paid": true, "status": "succeeded", "livemode": false,
		"payment_intent": nullable(ch.paymentIntent), "payment_method": nullable(ch.paymentMethod),
		"customer": nullable(ch.customer), "metadata": orEmpty(ch.metadata), "created": ch.created.Unix(),
		"payment_method_details": obj{"type": "card", "card": card},
	}
}

func chargeRoutes() []stripeRoute {
	return []stripeRoute{
		route(http.MethodPost, "/v1/charges", chargeCreate),
		route(http.MethodGet, "/v1/charges", chargeList),
		route(http.MethodGet, "/v1/charges/"+idPat, chargeRetrieve),
		route(http.MethodPost, "/v1/charges/"+idPat, chargeUpdate),
		route(http.MethodPost, "/v1/charges/"+idPat+"/capture", chargeCapture),
		route(http.MethodPost, "/v1/refunds", refundCreate),
		route(http.MethodGet, "/v1/refunds/"+idPat, refundRetrieve),
	}
}

func chargeCreate(c *stripeCall) (any, *stripeError) {
	amount, _, e := c.amountParam("amount", true)
	if e != nil {
		return nil, e
	}
	cur, e := c.currencyParam("currency", true)
	if e != nil {
		return nil, e
	}
	capture, e := c.p.bool("capture", true)
	if e != nil {
		return nil, e
	}
	src, cus := c.p.str("source"), c.p.str("customer")
	if src == "" && cus == "" {
		return nil, errMissing("source")
	}
	if cus != "" {
		if _, ok := c.acct.customers.get(cus); !ok {
			return nil, errNoSuch("customer", cus, "customer")
		}
	}
	micros, e := c.micros(amount, cur)
	if e != nil {
		return nil, e
	}
	if src == "tok_chargeDeclined" || strings.Contains(src, "chargeDeclined") {
		return nil, errCardDeclined(nil)
	}
	ch := &charge{id: c.s.stripeID("ch"), amount: amount, currency: cur, source: src, customer: cus,
		metadata: mergeMetadata(nil, c.p), created: c.now}
	c.acct.charges.put(ch.id, ch)
	if capture {
		ch.captured, ch.amountCaptured = true, amount
		c.record(KindCapture, ch.id, micros, amount, cur, "charge created with capture=true")
	} else {
		ch.heldMicros = micros
		c.record(KindAuthorize, ch.id, micros, amount, cur, "charge created with capture=false")
	}
	return ch.render(), nil
}

func (c *stripeCall) charge() (*charge, *stripeError) {
	ch, ok := c.acct.charges.get(c.m[1])
	if !ok {
		return nil, errNoSuch("charge", c.m[1], "charge")
	}
	return ch, nil
}

func chargeRetrieve(c *stripeCall) (any, *stripeError) {
	ch, e := c.charge()
	if e != nil {
		return nil, e
	}
	return ch.render(), nil
}

func chargeUpdate(c *stripeCall) (any, *stripeError) {
	ch, e := c.charge()
	if e != nil {
		return nil, e
	}
	ch.metadata = mergeMetadata(ch.metadata, c.p)
	return ch.render(), nil
}

func chargeList(c *stripeCall) (any, *stripeError) {
	var data []obj
	for _, ch := range c.acct.charges.newestFirst() {
		data = append(data, ch.render())
	}
	return c.listPage("/v1/charges", data)
}

func chargeCapture(c *stripeCall) (any, *stripeError) {
	ch, e := c.charge()
	if e != nil {
		return nil, e
	}
	if ch.paymentIntent != "" {
		return nil, errState("charge_already_captured", "", "This charge belongs to a PaymentIntent (%s); capture the PaymentIntent instead.", ch.paymentIntent)
	}
	if ch.captured {
		return nil, errState("charge_already_captured", "", "Charge %s has already been captured.", ch.id)
	}
	if ch.refunded {
		return nil, errState("charge_expired_for_capture", "", "Charge %s has been refunded and cannot be captured.", ch.id)
	}
	amount, given, e := c.amountParam("amount", false)
	if e != nil {
		return nil, e
	}
	if !given {
		amount = ch.amount
	}
	if amount > ch.amount {
		return nil, invalidRequest(http.StatusBadRequest, "amount_too_large", "amount",
			"Amount to capture (%d) must be less than or equal to the charge amount (%d).", amount, ch.amount)
	}
	micros, e := c.micros(amount, ch.currency)
	if e != nil {
		return nil, e
	}
	c.record(KindCapture, ch.id, micros, amount, ch.currency, "charge captured")
	c.record(KindRelease, ch.id, ch.heldMicros, ch.amount, ch.currency, "hold released by capture")
	ch.heldMicros = 0
	ch.captured, ch.amountCaptured = true, amount
	if amount < ch.amount {
		ch.amountRefunded = ch.amount - amount // Stripe shows the uncaptured rest as refunded
	}
	return ch.render(), nil
}

func refundCreate(c *stripeCall) (any, *stripeError) {
	chID, piID := c.p.str("charge"), c.p.str("payment_intent")
	if chID == "" && piID == "" {
		return nil, errMissing("charge")
	}
	if piID != "" {
		pi, ok := c.acct.intents.get(piID)
		if !ok {
			return nil, errNoSuch("payment_intent", piID, "payment_intent")
		}
		if pi.status != "succeeded" {
			return nil, errState("charge_not_refundable", "payment_intent",
				"This PaymentIntent (%s) does not have a successful charge to refund (status %s).", pi.id, pi.status)
		}
		chID = pi.latestCharge
	}
	ch, ok := c.acct.charges.get(chID)
	if !ok {
		return nil, errNoSuch("charge", chID, "charge")
	}
	amount, given, e := c.amountParam("amount", false)
	if e != nil {
		return nil, e
	}
	if !ch.captured {
		// An uncaptured charge is "refunded" by releasing its hold.
		if ch.refunded {
			return nil, errState("charge_already_refunded", "", "Charge %s has already been refunded.", ch.id)
		}
		c.record(KindRelease, ch.id, ch.heldMicros, ch.amount, ch.currency, "hold released by refund")
		ch.heldMicros, ch.refunded, ch.amountRefunded = 0, true, ch.amount
		return c.putRefund(ch, ch.amount), nil
	}
	left := ch.amountCaptured - ch.amountRefunded
	if left <= 0 {
		return nil, errState("charge_already_refunded", "", "Charge %s has already been refunded.", ch.id)
	}
	if !given {
		amount = left
	}
	if amount > left {
		return nil, invalidRequest(http.StatusBadRequest, "amount_too_large", "amount",
			"Refund amount (%d) is greater than unrefunded amount on charge (%d)", amount, left)
	}
	micros, e := c.micros(amount, ch.currency)
	if e != nil {
		return nil, e
	}
	ch.amountRefunded += amount
	ch.refunded = ch.amountRefunded >= ch.amountCaptured
	re := c.putRefund(ch, amount)
	c.record(KindRefund, re["id"].(string), micros, amount, ch.currency, "refund of "+ch.id)
	return re, nil
}

func (c *stripeCall) putRefund(ch *charge, amount int64) obj {
	re := obj{"id": c.s.stripeID("re"), "object": "refund", "amount": amount, "charge": ch.id,
		"currency": ch.currency, "payment_intent": nullable(ch.paymentIntent), "status": "succeeded",
		"metadata": mergeMetadata(nil, c.p), "created": c.now.Unix()}
	c.acct.refunds.put(re["id"].(string), re)
	return re
}

func refundRetrieve(c *stripeCall) (any, *stripeError) {
	re, ok := c.acct.refunds.get(c.m[1])
	if !ok {
		return nil, errNoSuch("refund", c.m[1], "id")
	}
	return re, nil
}
