package simvendor

import "time"

// What Stripe does on its own as time passes, evaluated lazily against the
// injected clock:
//
//   - an authorisation not captured within 7 days lapses: the
//     PaymentIntent is canceled (cancellation_reason "automatic"), an
//     uncaptured Charge is refunded, and the hold is released
//     (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method);
//   - a subscription whose period (or trial) ends renews: a new invoice
//     with its items and pending prorations is collected; with
//     cancel_at_period_end it is canceled instead;
//   - an incomplete subscription whose first invoice is unpaid after 23
//     hours expires (incomplete_expired, invoice voided)
//     (https://docs.stripe.com/billing/subscriptions/overview#payment-window);
//   - an auto_advance draft invoice is finalized an hour after creation,
//     and collected when it charges automatically.
const (
	authorizationLife = 7 * 24 * time.Hour
	incompleteLife    = 23 * time.Hour
	autoAdvanceDelay  = time.Hour
	maxRenewals       = 10_000 // bound on periods caught up in one step
)

// stripeAdvance runs the clock's work on every account. Called with s.mu held.
func (s *Sim) stripeAdvance(now time.Time) {
	for id, a := range s.stripe.accounts {
		b := billing{s: s, a: a, account: id, now: now}
		b.lapseAuthorizations()
		b.renewSubscriptions()
		b.advanceInvoices()
	}
}

func (b billing) lapseAuthorizations() {
	for _, pi := range b.a.intents.newestFirst() {
		if pi.status == "requires_capture" && !b.now.Before(pi.authorizedAt.Add(authorizationLife)) {
			c := &stripeCall{s: b.s, acct: b.a, account: b.account, now: b.now}
			c.cancelIntent(pi, "automatic")
		}
	}
	for _, ch := range b.a.charges.newestFirst() {
		if !ch.captured && !ch.refunded && ch.paymentIntent == "" && !b.now.Before(ch.created.Add(authorizationLife)) {
			b.s.record(Event{Vendor: VendorStripe, Account: b.account, Object: ch.id, Kind: KindRelease,
				Micros: ch.heldMicros, Amount: ch.amount, Unit: ch.currency, Note: "uncaptured charge expired"})
			ch.heldMicros, ch.refunded, ch.amountRefunded = 0, true, ch.amount
		}
	}
}

func (b billing) renewSubscriptions() {
	for _, sub := range b.a.subs.newestFirst() {
		if sub.status == "incomplete" && !b.now.Before(sub.created.Add(incompleteLife)) {
			sub.status = "incomplete_expired"
			if inv, ok := b.a.invoices.get(sub.latestInvoice); ok && inv.status == "open" {
				inv.status = "void"
			}
			continue
		}
		for n := 0; n < maxRenewals && (sub.status == "active" || sub.status == "trialing" || sub.status == "past_due") &&
			!b.now.Before(sub.periodEnd); n++ {
			if sub.cancelAtPeriodEnd {
				sub.status, sub.canceledAt = "canceled", sub.periodEnd
				break
			}
			at := b
			at.now = sub.periodEnd
			inv := at.newInvoice(sub.customer, sub.id, sub.currency, sub.collection, "subscription_cycle", true)
			at.attachPending(inv, sub.id)
			sub.periodStart, sub.periodEnd = sub.periodEnd, addInterval(sub.periodEnd, sub.interval, sub.intervalCount)
			at.addItemLines(inv, sub, false)
			sub.latestInvoice = inv.id
			sub.status = "active"
			if e := at.finalizeAndCollect(inv); e != nil {
				b.s.problem("stripe: renewal of " + sub.id + ": " + e.message)
				break
			}
		}
	}
}

func (b billing) advanceInvoices() {
	for _, inv := range b.a.invoices.newestFirst() {
		if !inv.autoAdvance {
			continue
		}
		if inv.status == "draft" && !b.now.Before(inv.created.Add(autoAdvanceDelay)) {
			if e := b.finalize(inv); e != nil {
				continue
			}
		}
		if inv.status == "open" && inv.collection == "charge_automatically" {
			if e := b.collect(inv); e != nil {
				b.s.problem("stripe: collection of " + inv.id + ": " + e.message)
			}
		}
	}
}
