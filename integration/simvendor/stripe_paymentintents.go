package simvendor

import (
	"net/http"
	"strings"
	"time"
)

// PaymentIntent lifecycle, after https://docs.stripe.com/payments/paymentintents/lifecycle
// and the API reference (https://docs.stripe.com/api/payment_intents):
//
//   - created without a payment method: requires_payment_method; with one:
//     requires_confirmation; confirm=true confirms at once.
//   - confirm with automatic (or automatic_async) capture: succeeded,
//     amount_received = amount, money moves. With manual capture (the
//     intent's capture_method, or payment_method_options[card][capture_method]
//     which overrides it for cards): requires_capture, amount_capturable =
//     amount, a hold (Authorized), no money yet.
//   - capture: amount_to_capture (default: all that is capturable) moves.
//     Above amount_capturable only with
//     payment_method_options[card][request_overcapture]=if_available, up to
//     Config.OvercapturePercent more (https://docs.stripe.com/payments/overcapture).
//     final_capture=false keeps the rest capturable only with
//     request_multicapture=if_available
//     (https://docs.stripe.com/payments/multicapture); otherwise the rest of
//     the hold is released.
//   - increment_authorization raises amount (and the hold) of a
//     requires_capture intent created with
//     request_incremental_authorization=if_available
//     (https://docs.stripe.com/payments/incremental-authorization).
//   - update: amount, currency, payment_method, capture_method and
//     payment_method_options only in requires_payment_method,
//     requires_confirmation or requires_action (so overcapture cannot be
//     switched on after the authorisation); metadata and description in any
//     status.
//   - cancel: releases a hold; not once succeeded or canceled.
//   - a requires_capture intent lapses (canceled, hold released) 7 days after
//     authorisation, as online card authorisations do
//     (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method).
//
// Simplifications: every card succeeds without 3-D Secure (no
// requires_action, no processing), except the documented decline test
// methods (pm_card_chargeDeclined, pm_card_visa_chargeDeclined, and methods
// made from tok_chargeDeclined), which fail with a 402 card_error and leave
// the intent in requires_payment_method. Overcapture is available on every
// card. Fees, application_fee_amount and transfer_data are ignored.
type paymentIntent struct {
	id                 string
	amount             int64
	currency           string
	status             string
	captureMethod      string
	cardCaptureMethod  string
	overcapture        bool
	incremental        bool
	multicapture       bool
	paymentMethod      string
	customer           string
	description        string
	metadata           map[string]string
	amountCapturable   int64
	amountReceived     int64
	maxCapturable      int64
	heldMicros         int64
	latestCharge       string
	created            time.Time
	authorizedAt       time.Time
	canceledAt         int64
	cancellationReason string
	lastError          map[string]any
}

func (pi *paymentIntent) manual() bool {
	if pi.cardCaptureMethod != "" {
		return pi.cardCaptureMethod == "manual"
	}
	return pi.captureMethod == "manual"
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (pi *paymentIntent) render() obj {
	card := obj{}
	ifAvail := func(b bool) string {
		if b {
			return "if_available"
		}
		return "never"
	}
	card["request_overcapture"] = ifAvail(pi.overcapture)
	card["request_incremental_authorization"] = ifAvail(pi.incremental)
	card["request_multicapture"] = ifAvail(pi.multicapture)
	if pi.cardCaptureMethod != "" {
		card["capture_method"] = pi.cardCaptureMethod
	}
	var canceledAt any
	if pi.canceledAt != 0 {
		canceledAt = pi.canceledAt
	}
	var lastErr any
	if pi.lastError != nil {
		lastErr = pi.lastError
	}
	return obj{
		"id": pi.id, "object": "payment_intent",
		"amount": pi.amount, "amount_capturable": pi.amountCapturable, "amount_received": pi.amountReceived,
		"currency": pi.currency, "status": pi.status,
		"capture_method": pi.captureMethod, "confirmation_method": "automatic",
		"client_secret":          pi.id + "_secret_sim",
		"created":                pi.created.Unix(),
		"customer":               nullable(pi.customer),
		"description":            nullable(pi.description),
		"latest_charge":          nullable(pi.latestCharge),
		"last_payment_error":     lastErr,
		"livemode":               false,
		"metadata":               orEmpty(pi.metadata),
		"next_action":            nil,
		"payment_method":         nullable(pi.paymentMethod),
		"payment_method_options": obj{"card": card},
		"payment_method_types":   []string{"card"},
		"canceled_at":            canceledAt,
		"cancellation_reason":    nullable(pi.cancellationReason),
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func paymentIntentRoutes() []stripeRoute {
	base := "/v1/payment_intents"
	return []stripeRoute{
		route(http.MethodPost, base, piCreate),
		route(http.MethodGet, base, piList),
		route(http.MethodGet, base+"/search", piSearch),
		route(http.MethodGet, base+"/"+idPat, piRetrieve),
		route(http.MethodPost, base+"/"+idPat, piUpdate),
		route(http.MethodPost, base+"/"+idPat+"/confirm", piConfirm),
		route(http.MethodPost, base+"/"+idPat+"/capture", piCapture),
		route(http.MethodPost, base+"/"+idPat+"/cancel", piCancel),
		route(http.MethodPost, base+"/"+idPat+"/increment_authorization", piIncrement),
	}
}

func (c *stripeCall) intent() (*paymentIntent, *stripeError) {
	pi, ok := c.acct.intents.get(c.m[1])
	if !ok {
		return nil, errNoSuch("payment_intent", c.m[1], "intent")
	}
	return pi, nil
}

// readCaptureOptions applies capture_method and the card options to pi.
func (c *stripeCall) readCaptureOptions(pi *paymentIntent) *stripeError {
	if c.p.has("capture_method") {
		switch m := c.p.str("capture_method"); m {
		case "automatic", "automatic_async", "manual":
			pi.captureMethod = m
		default:
			return errInvalidParam("capture_method", "Invalid capture_method: must be one of automatic, automatic_async, or manual")
		}
	}
	card, _ := c.p.sub("payment_method_options[card]")
	for k, dst := range map[string]*bool{
		"request_overcapture": &pi.overcapture, "request_incremental_authorization": &pi.incremental,
		"request_multicapture": &pi.multicapture,
	} {
		if v, ok := card[k]; ok {
			if v != "if_available" && v != "never" {
				return errInvalidParam("payment_method_options[card]["+k+"]", "Invalid %s: must be one of if_available or never", k)
			}
			*dst = v == "if_available"
		}
	}
	if v, ok := card["capture_method"]; ok {
		if v != "manual" && v != "" {
			return errInvalidParam("payment_method_options[card][capture_method]", "Invalid capture_method: must be manual")
		}
		pi.cardCaptureMethod = v
	}
	return nil
}

func piCreate(c *stripeCall) (any, *stripeError) {
	amount, _, e := c.amountParam("amount", true)
	if e != nil {
		return nil, e
	}
	cur, e := c.currencyParam("currency", true)
	if e != nil {
		return nil, e
	}
	confirm, e := c.p.bool("confirm", false)
	if e != nil {
		return nil, e
	}
	pi := &paymentIntent{amount: amount, currency: cur, captureMethod: "automatic_async",
		customer: c.p.str("customer"), description: c.p.str("description"),
		paymentMethod: c.p.str("payment_method"), created: c.now}
	if e := c.readCaptureOptions(pi); e != nil {
		return nil, e
	}
	if pi.paymentMethod != "" {
		if e := c.checkPaymentMethod(pi.paymentMethod); e != nil {
			return nil, e
		}
	}
	pi.metadata = mergeMetadata(nil, c.p)
	pi.status = "requires_payment_method"
	if pi.paymentMethod != "" {
		pi.status = "requires_confirmation"
	}
	pi.id = c.s.stripeID("pi")
	c.acct.intents.put(pi.id, pi)
	if confirm {
		if e := c.confirm(pi); e != nil {
			return nil, e
		}
	}
	return pi.render(), nil
}

func piRetrieve(c *stripeCall) (any, *stripeError) {
	pi, e := c.intent()
	if e != nil {
		return nil, e
	}
	return pi.render(), nil
}

func piList(c *stripeCall) (any, *stripeError) {
	var data []obj
	for _, pi := range c.acct.intents.newestFirst() {
		if cu := c.p.str("customer"); cu != "" && pi.customer != cu {
			continue
		}
		data = append(data, pi.render())
	}
	return c.listPage("/v1/payment_intents", data)
}

var piEditable = map[string]bool{"requires_payment_method": true, "requires_confirmation": true, "requires_action": true}

func piUpdate(c *stripeCall) (any, *stripeError) {
	pi, e := c.intent()
	if e != nil {
		return nil, e
	}
	fields := []string{"amount", "currency", "payment_method", "capture_method"}
	for k := range c.p {
		if strings.HasPrefix(k, "payment_method_options[") {
			fields = append(fields, k)
		}
	}
	for _, f := range fields {
		if c.p.has(f) && !piEditable[pi.status] {
			err := errState("payment_intent_unexpected_state", f,
				"This PaymentIntent's %s could not be updated because it has a status of %s. You may only update the %s of a PaymentIntent with one of the following statuses: requires_payment_method, requires_confirmation, requires_action.",
				f, pi.status, f)
			err.extra = map[string]any{"payment_intent": pi.render()}
			return nil, err
		}
	}
	next := *pi
	if c.p.has("amount") {
		if next.amount, _, e = c.amountParam("amount", true); e != nil {
			return nil, e
		}
	}
	if c.p.has("currency") {
		if next.currency, e = c.currencyParam("currency", true); e != nil {
			return nil, e
		}
	}
	if e := c.readCaptureOptions(&next); e != nil {
		return nil, e
	}
	if c.p.has("payment_method") {
		next.paymentMethod = c.p.str("payment_method")
		if next.paymentMethod != "" {
			if e := c.checkPaymentMethod(next.paymentMethod); e != nil {
				return nil, e
			}
			next.status = "requires_confirmation"
		} else {
			next.status = "requires_payment_method"
		}
	}
	if c.p.has("description") {
		next.description = c.p.str("description")
	}
	if c.p.has("customer") {
		next.customer = c.p.str("customer")
	}
	next.metadata = mergeMetadata(pi.metadata, c.p)
	*pi = next
	return pi.render(), nil
}

func piConfirm(c *stripeCall) (any, *stripeError) {
	pi, e := c.intent()
	if e != nil {
		return nil, e
	}
	if !piEditable[pi.status] {
		err := errState("payment_intent_unexpected_state", "",
			"You cannot confirm this PaymentIntent because it has a status of %s. Only a PaymentIntent with one of the following statuses may be confirmed: requires_payment_method, requires_confirmation, requires_action.", pi.status)
		err.extra = map[string]any{"payment_intent": pi.render()}
		return nil, err
	}
	if c.p.has("payment_method") {
		if e := c.checkPaymentMethod(c.p.str("payment_method")); e != nil {
			return nil, e
		}
		pi.paymentMethod = c.p.str("payment_method")
	}
	if e := c.readCaptureOptions(pi); e != nil {
		return nil, e
	}
	if e := c.confirm(pi); e != nil {
		return nil, e
	}
	return pi.render(), nil
}

// declines reports whether the payment method is one of Stripe's declining
// test methods (https://docs.stripe.com/testing#declined-payments).
func (c *stripeCall) declines(pm string) bool {
	if pm == "pm_card_chargeDeclined" || pm == "pm_card_visa_chargeDeclined" {
		return true
	}
	if o, ok := c.acct.paymentMeths.get(pm); ok {
		return o["_declines"] == true
	}
	return false
}

// confirm authorises or charges pi's payment method.
func (c *stripeCall) confirm(pi *paymentIntent) *stripeError {
	if pi.paymentMethod == "" {
		err := errState("payment_intent_unexpected_state", "",
			"You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method or ConfirmationToken.")
		err.extra = map[string]any{"payment_intent": pi.render()}
		return err
	}
	micros, e := c.micros(pi.amount, pi.currency)
	if e != nil {
		return e
	}
	if c.declines(pi.paymentMethod) {
		pi.status = "requires_payment_method"
		pi.lastError = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
			"message": "Your card was declined.", "payment_method": obj{"id": pi.paymentMethod}}
		return errCardDeclined(map[string]any{"payment_intent": pi.render()})
	}
	pi.lastError = nil
	ch := &charge{id: c.s.stripeID("ch"), amount: pi.amount, currency: pi.currency, paymentIntent: pi.id,
		customer: pi.customer, paymentMethod: pi.paymentMethod, created: c.now, metadata: pi.metadata}
	pi.latestCharge = ch.id
	c.acct.charges.put(ch.id, ch)
	if pi.manual() {
		pi.status = "requires_capture"
		pi.amountCapturable = pi.amount
		pi.maxCapturable = pi.amount
		if pi.overcapture {
			pi.maxCapturable = pi.amount + pi.amount*c.s.cfg.OvercapturePercent/100
		}
		pi.authorizedAt = c.now
		pi.heldMicros = micros
		ch.overcaptureMax = pi.maxCapturable
		c.record(KindAuthorize, pi.id, micros, pi.amount, pi.currency, "payment_intent authorised")
		return nil
	}
	pi.status = "succeeded"
	pi.amountReceived = pi.amount
	ch.captured, ch.amountCaptured = true, pi.amount
	c.record(KindCapture, pi.id, micros, pi.amount, pi.currency, "payment_intent confirmed with automatic capture")
	return nil
}

func piCapture(c *stripeCall) (any, *stripeError) {
	pi, e := c.intent()
	if e != nil {
		return nil, e
	}
	if pi.status != "requires_capture" {
		err := errState("payment_intent_unexpected_state", "",
			"This PaymentIntent could not be captured because it has a status of %s. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.", pi.status)
		err.extra = map[string]any{"payment_intent": pi.render()}
		return nil, err
	}
	atc, given, e := c.amountParam("amount_to_capture", false)
	if e != nil {
		return nil, e
	}
	if !given {
		atc = pi.amountCapturable
	}
	final, e := c.p.bool("final_capture", true)
	if e != nil {
		return nil, e
	}
	if !final && !pi.multicapture {
		return nil, errInvalidParam("final_capture",
			"final_capture=false is only allowed for PaymentIntents created with payment_method_options[card][request_multicapture]=if_available.")
	}
	limit := pi.amountCapturable
	if pi.overcapture && final {
		// Overcapture is measured against the whole authorisation.
		limit = pi.maxCapturable - pi.amountReceived
	}
	if atc > limit {
		return nil, invalidRequest(http.StatusBadRequest, "amount_too_large", "amount_to_capture",
			"The amount_to_capture (%d) must be less than or equal to the PaymentIntent's amount_capturable (%d)%s.",
			atc, pi.amountCapturable, overcaptureNote(pi))
	}
	micros, e := c.micros(atc, pi.currency)
	if e != nil {
		return nil, e
	}
	c.record(KindCapture, pi.id, micros, atc, pi.currency, "payment_intent captured")
	pi.amountReceived += atc
	if ch, ok := c.acct.charges.get(pi.latestCharge); ok {
		ch.captured = true
		ch.amountCaptured += atc
	}
	remaining := pi.amountCapturable - atc
	if final || remaining <= 0 {
		remaining = 0
	}
	newHeld := int64(0)
	if remaining > 0 {
		if newHeld, e = c.micros(remaining, pi.currency); e != nil {
			return nil, e
		}
	}
	if pi.heldMicros > newHeld {
		c.record(KindRelease, pi.id, pi.heldMicros-newHeld, pi.amountCapturable-remaining, pi.currency, "hold released by capture")
	}
	pi.heldMicros = newHeld
	pi.amountCapturable = remaining
	if remaining == 0 {
		pi.status = "succeeded"
	}
	return pi.render(), nil
}

func overcaptureNote(pi *paymentIntent) string {
	if pi.overcapture {
		return "; with overcapture, at most " + itoa(pi.maxCapturable) + " in total"
	}
	return ""
}

func piCancel(c *stripeCall) (any, *stripeError) {
	pi, e := c.intent()
	if e != nil {
		return nil, e
	}
	if pi.status == "succeeded" || pi.status == "canceled" {
		err := errState("payment_intent_unexpected_state", "",
			"You cannot cancel this PaymentIntent because it has a status of %s. Only a PaymentIntent with one of the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, requires_action, processing.", pi.status)
		err.extra = map[string]any{"payment_intent": pi.render()}
		return nil, err
	}
	reason := c.p.str("cancellation_reason")
	switch reason {
	case "", "duplicate", "fraudulent", "requested_by_customer", "abandoned":
	default:
		return nil, errInvalidParam("cancellation_reason", "Invalid cancellation_reason: must be one of duplicate, fraudulent, requested_by_customer, or abandoned")
	}
	c.cancelIntent(pi, reason)
	return pi.render(), nil
}

// cancelIntent cancels pi and releases its hold.
func (c *stripeCall) cancelIntent(pi *paymentIntent, reason string) {
	if pi.heldMicros > 0 {
		c.s.record(Event{Vendor: VendorStripe, Account: c.account, Object: pi.id, Kind: KindRelease,
			Micros: pi.heldMicros, Amount: pi.amountCapturable, Unit: pi.currency, Note: "hold released by cancel"})
	}
	pi.heldMicros = 0
	pi.amountCapturable = 0
	pi.status = "canceled"
	pi.canceledAt = c.now.Unix()
	pi.cancellationReason = reason
}

func piIncrement(c *stripeCall) (any, *stripeError) {
	pi, e := c.intent()
	if e != nil {
		return nil, e
	}
	if pi.status != "requires_capture" || !pi.incremental {
		err := errState("payment_intent_unexpected_state", "",
			"This PaymentIntent's authorization could not be incremented: only a PaymentIntent with status requires_capture created with payment_method_options[card][request_incremental_authorization]=if_available can be incremented (status is %s).", pi.status)
		err.extra = map[string]any{"payment_intent": pi.render()}
		return nil, err
	}
	amount, _, e := c.amountParam("amount", true)
	if e != nil {
		return nil, e
	}
	if amount <= pi.amount {
		return nil, errInvalidParam("amount", "The amount must be greater than the currently authorized amount (%d).", pi.amount)
	}
	micros, e := c.micros(pi.amountCapturable+amount-pi.amount, pi.currency)
	if e != nil {
		return nil, e
	}
	c.record(KindAuthorize, pi.id, micros-pi.heldMicros, amount-pi.amount, pi.currency, "authorization incremented")
	pi.heldMicros = micros
	pi.amountCapturable += amount - pi.amount
	pi.maxCapturable += amount - pi.amount
	if pi.overcapture {
		pi.maxCapturable = amount + amount*c.s.cfg.OvercapturePercent/100
	}
	pi.amount = amount
	return pi.render(), nil
}

// checkPaymentMethod accepts Stripe's test payment methods (pm_card_*) and
// methods created in this account.
func (c *stripeCall) checkPaymentMethod(pm string) *stripeError {
	if strings.HasPrefix(pm, "pm_card_") {
		return nil
	}
	if _, ok := c.acct.paymentMeths.get(pm); ok {
		return nil
	}
	return errNoSuch("PaymentMethod", pm, "payment_method")
}
