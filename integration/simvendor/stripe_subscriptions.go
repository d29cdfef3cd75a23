package simvendor

import (
	"net/http"
	"time"
)

// Subscriptions, after https://docs.stripe.com/api/subscriptions and
// https://docs.stripe.com/billing/subscriptions/prorations:
//
//   - create (customer, items[i][price], items[i][quantity]): the first
//     invoice (Σ unit_amount × quantity) is finalized and, with
//     collection_method=charge_automatically, paid at once: money moves.
//     With a trial (trial_period_days, trial_end) the first invoice is $0
//     and the first charge comes when the trial ends. With
//     payment_behavior=default_incomplete the subscription is "incomplete"
//     and its open invoice moves money only when paid; unpaid, it expires
//     after 23 hours. With collection_method=send_invoice the invoice stays
//     open until paid.
//   - update (POST /v1/subscriptions/{id}, items[i][id|price|quantity|deleted]):
//     proration_behavior=create_prorations (default) adds two pending
//     invoice items (credit for the unused time of the old items, charge
//     for the remaining time of the new ones) billed on the next invoice;
//     always_invoice bills them now; none adds nothing.
//     billing_cycle_anchor=now starts a new period and bills it at once
//     (with the unused-time credit unless proration_behavior=none).
//   - renewal: when the clock passes the period end, a new invoice (items +
//     pending prorations) is created and collected, as Stripe does.
//   - cancel (DELETE): no further renewals; invoice_now=true bills pending
//     items at once, prorate=true credits the unused time first.
//
// Simplifications: all items must share one currency and billing interval;
// payments never fail; proration is computed on the subscription's totals
// (what Stripe's per-item lines add up to, give or take a unit of
// rounding); cancel_at, pause_collection, schedules, discounts and taxes are
// not simulated.
type subItem struct {
	id       string
	price    *price
	quantity int64
}

type subscription struct {
	id                string
	customer          string
	items             []*subItem
	status            string
	currency          string
	interval          string
	intervalCount     int64
	periodStart       time.Time
	periodEnd         time.Time
	trialEnd          time.Time
	collection        string
	latestInvoice     string
	metadata          map[string]string
	cancelAtPeriodEnd bool
	canceledAt        time.Time
	created           time.Time
}

func (sub *subscription) total() int64 {
	var t int64
	for _, it := range sub.items {
		t += it.price.unitAmount * it.quantity
	}
	return t
}

func (sub *subscription) render() obj {
	items := []any{}
	for _, it := range sub.items {
		items = append(items, obj{"id": it.id, "object": "subscription_item", "price": it.price.render(),
			"quantity": it.quantity, "subscription": sub.id,
			"current_period_start": sub.periodStart.Unix(), "current_period_end": sub.periodEnd.Unix()})
	}
	unixOrNil := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.Unix()
	}
	return obj{"id": sub.id, "object": "subscription", "customer": sub.customer, "status": sub.status,
		"currency": sub.currency, "items": list("/v1/subscription_items?subscription="+sub.id, items),
		"current_period_start": sub.periodStart.Unix(), "current_period_end": sub.periodEnd.Unix(),
		"trial_end": unixOrNil(sub.trialEnd), "canceled_at": unixOrNil(sub.canceledAt),
		"cancel_at_period_end": sub.cancelAtPeriodEnd, "collection_method": sub.collection,
		"latest_invoice": nullable(sub.latestInvoice), "metadata": orEmpty(sub.metadata),
		"created": sub.created.Unix(), "livemode": false}
}

func subscriptionRoutes() []stripeRoute {
	base := "/v1/subscriptions"
	return []stripeRoute{
		route(http.MethodPost, base, subCreate),
		route(http.MethodGet, base, subList),
		route(http.MethodGet, base+"/"+idPat, subRetrieve),
		route(http.MethodPost, base+"/"+idPat, subUpdate),
		route(http.MethodDelete, base+"/"+idPat, subCancel),
	}
}

func (c *stripeCall) sub() (*subscription, *stripeError) {
	sub, ok := c.acct.subs.get(c.m[1])
	if !ok {
		return nil, errNoSuch("subscription", c.m[1], "id")
	}
	return sub, nil
}

// recurringPrice finds a recurring price compatible with sub (nil: any).
func (c *stripeCall) recurringPrice(id, param string, sub *subscription) (*price, *stripeError) {
	p, ok := c.acct.prices.get(id)
	if !ok {
		return nil, errNoSuch("price", id, param)
	}
	if !p.recurring {
		return nil, errInvalidParam(param, "The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.")
	}
	if sub != nil && (p.currency != sub.currency || p.interval != sub.interval || p.intervalCount != sub.intervalCount) {
		return nil, errInvalidParam(param, "The simulator needs every item of a subscription to share one currency and billing interval.")
	}
	return p, nil
}

func quantity(v string, present bool, param string) (int64, *stripeError) {
	if !present {
		return 1, nil
	}
	n, ok := atoi64(v)
	if !ok {
		return 0, errInvalidInteger(param, v)
	}
	if n < 0 || n > 1_000_000 {
		return 0, errInvalidParam(param, "Invalid quantity.")
	}
	return n, nil
}

func subCreate(c *stripeCall) (any, *stripeError) {
	cus := c.p.str("customer")
	if cus == "" {
		return nil, errMissing("customer")
	}
	if _, ok := c.acct.customers.get(cus); !ok {
		return nil, errNoSuch("customer", cus, "customer")
	}
	entries := c.p.list("items")
	if len(entries) == 0 {
		return nil, errMissing("items")
	}
	sub := &subscription{customer: cus, created: c.now, collection: "charge_automatically"}
	for i, it := range entries {
		param := "items[" + itoa(int64(i)) + "][price]"
		if it["price"] == "" {
			return nil, errMissing(param)
		}
		var first *subscription
		if i > 0 {
			first = sub
		}
		p, e := c.recurringPrice(it["price"], param, first)
		if e != nil {
			return nil, e
		}
		q, present := it["quantity"]
		n, e := quantity(q, present, "items["+itoa(int64(i))+"][quantity]")
		if e != nil {
			return nil, e
		}
		if i == 0 {
			sub.currency, sub.interval, sub.intervalCount = p.currency, p.interval, p.intervalCount
		}
		sub.items = append(sub.items, &subItem{price: p, quantity: n})
	}
	switch coll := c.p.str("collection_method"); coll {
	case "", "charge_automatically":
	case "send_invoice":
		if !c.p.has("days_until_due") {
			return nil, errMissing("days_until_due")
		}
		sub.collection = coll
	default:
		return nil, errInvalidParam("collection_method", "Invalid collection_method.")
	}
	behavior := c.p.str("payment_behavior")
	switch behavior {
	case "", "allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete":
	default:
		return nil, errInvalidParam("payment_behavior", "Invalid payment_behavior.")
	}
	if days, ok, e := c.p.int("trial_period_days"); e != nil {
		return nil, e
	} else if ok && days > 0 {
		sub.trialEnd = c.now.AddDate(0, 0, int(days))
	}
	if te := c.p.str("trial_end"); te != "" && te != "now" {
		n, ok := atoi64(te)
		if !ok || n <= c.now.Unix() {
			return nil, errInvalidParam("trial_end", "Invalid timestamp: must be an integer Unix timestamp in the future.")
		}
		sub.trialEnd = time.Unix(n, 0)
	}
	sub.id = c.s.stripeID("sub")
	for _, it := range sub.items {
		it.id = c.s.stripeID("si")
	}
	sub.metadata = mergeMetadata(nil, c.p)
	b := c.billing()
	inv := b.newInvoice(cus, sub.id, sub.currency, sub.collection, "subscription_create", true)
	sub.latestInvoice = inv.id
	sub.periodStart = c.now
	c.acct.subs.put(sub.id, sub)
	if !sub.trialEnd.IsZero() {
		sub.status = "trialing"
		sub.periodEnd = sub.trialEnd
		b.addItemLines(inv, sub, true)
		if e := b.finalize(inv); e != nil {
			return nil, e
		}
		return sub.render(), nil
	}
	sub.periodEnd = addInterval(c.now, sub.interval, sub.intervalCount)
	b.addItemLines(inv, sub, false)
	if e := b.finalize(inv); e != nil {
		return nil, e
	}
	sub.status = "active"
	if behavior == "default_incomplete" && inv.status == "open" {
		// The customer must confirm this payment; Stripe does not collect
		// it on its own.
		sub.status, inv.autoAdvance = "incomplete", false
		return sub.render(), nil
	}
	if sub.collection == "charge_automatically" {
		if e := b.collect(inv); e != nil {
			return nil, e
		}
	}
	return sub.render(), nil
}

// addItemLines bills one period of every item (free during a trial).
func (b billing) addItemLines(inv *invoice, sub *subscription, trial bool) {
	for _, it := range sub.items {
		amount := it.price.unitAmount * it.quantity
		desc := itoa(it.quantity) + " × " + it.price.id
		if trial {
			amount, desc = 0, "Trial period for "+it.price.id
		}
		inv.lines = append(inv.lines, invoiceLine{id: b.s.stripeID("il"), amount: amount, description: desc,
			quantity: it.quantity, price: it.price.id})
	}
}

func subRetrieve(c *stripeCall) (any, *stripeError) {
	sub, e := c.sub()
	if e != nil {
		return nil, e
	}
	return sub.render(), nil
}

func subList(c *stripeCall) (any, *stripeError) {
	var data []any
	for _, sub := range c.acct.subs.newestFirst() {
		if c.p.str("customer") == "" || sub.customer == c.p.str("customer") {
			data = append(data, sub.render())
		}
	}
	return list("/v1/subscriptions", c.listLimit(data)), nil
}

func subUpdate(c *stripeCall) (any, *stripeError) {
	sub, e := c.sub()
	if e != nil {
		return nil, e
	}
	if sub.status == "canceled" || sub.status == "incomplete_expired" {
		return nil, errState("subscription_not_editable", "", "A canceled subscription can only update its cancellation_details and metadata.")
	}
	behavior := c.p.str("proration_behavior")
	switch behavior {
	case "":
		behavior = "create_prorations"
	case "create_prorations", "always_invoice", "none":
	default:
		return nil, errInvalidParam("proration_behavior", "Invalid proration_behavior.")
	}
	anchor := c.p.str("billing_cycle_anchor")
	if anchor != "" && anchor != "now" && anchor != "unchanged" {
		return nil, errInvalidParam("billing_cycle_anchor", "Invalid billing_cycle_anchor: must be now or unchanged.")
	}
	items, e := c.changedItems(sub)
	if e != nil {
		return nil, e
	}
	if cape, e := c.p.bool("cancel_at_period_end", sub.cancelAtPeriodEnd); e != nil {
		return nil, e
	} else {
		sub.cancelAtPeriodEnd = cape
	}
	sub.metadata = mergeMetadata(sub.metadata, c.p)
	oldTotal := sub.total()
	sub.items = items
	newTotal := sub.total()
	b := c.billing()
	if sub.status == "trialing" {
		return sub.render(), nil // no prorations during a trial
	}
	remaining, length := sub.periodEnd.Sub(c.now), sub.periodEnd.Sub(sub.periodStart)
	if remaining < 0 {
		remaining = 0
	}
	if anchor == "now" {
		inv := b.newInvoice(sub.customer, sub.id, sub.currency, sub.collection, "subscription_update", true)
		if behavior != "none" {
			b.prorationItem(sub, -prorate(oldTotal, remaining, length), "Unused time on previous plan")
		}
		b.attachPending(inv, sub.id)
		sub.periodStart, sub.periodEnd = c.now, addInterval(c.now, sub.interval, sub.intervalCount)
		b.addItemLines(inv, sub, false)
		sub.latestInvoice = inv.id
		if e := b.finalizeAndCollect(inv); e != nil {
			return nil, e
		}
		return sub.render(), nil
	}
	if behavior == "none" || newTotal == oldTotal {
		return sub.render(), nil
	}
	b.prorationItem(sub, -prorate(oldTotal, remaining, length), "Unused time on previous plan")
	b.prorationItem(sub, prorate(newTotal, remaining, length), "Remaining time on new plan")
	if behavior == "always_invoice" {
		inv := b.newInvoice(sub.customer, sub.id, sub.currency, sub.collection, "subscription_update", true)
		b.attachPending(inv, sub.id)
		sub.latestInvoice = inv.id
		if e := b.finalizeAndCollect(inv); e != nil {
			return nil, e
		}
		return sub.render(), nil
	}
	return sub.render(), nil
}

// changedItems applies items[i][…] to a copy of sub's items.
func (c *stripeCall) changedItems(sub *subscription) ([]*subItem, *stripeError) {
	items := make([]*subItem, 0, len(sub.items))
	for _, it := range sub.items {
		cp := *it
		items = append(items, &cp)
	}
	for i, ent := range c.p.list("items") {
		pfx := "items[" + itoa(int64(i)) + "]"
		var target *subItem
		if id := ent["id"]; id != "" {
			for _, it := range items {
				if it.id == id {
					target = it
				}
			}
			if target == nil {
				return nil, errInvalidParam(pfx+"[id]", "Subscription item %s does not belong to %s.", id, sub.id)
			}
			if ent["deleted"] == "true" {
				kept := items[:0]
				for _, it := range items {
					if it != target {
						kept = append(kept, it)
					}
				}
				items = kept
				continue
			}
		} else {
			if ent["price"] == "" {
				return nil, errMissing(pfx + "[price]")
			}
			target = &subItem{id: c.s.stripeID("si"), quantity: 1}
			items = append(items, target)
		}
		if ent["price"] != "" {
			p, e := c.recurringPrice(ent["price"], pfx+"[price]", sub)
			if e != nil {
				return nil, e
			}
			target.price = p
		}
		if q, ok := ent["quantity"]; ok {
			n, e := quantity(q, true, pfx+"[quantity]")
			if e != nil {
				return nil, e
			}
			target.quantity = n
		}
	}
	if len(items) == 0 {
		return nil, errInvalidParam("items", "A subscription must keep at least one item.")
	}
	return items, nil
}

// prorationItem adds a pending proration invoice item to sub.
func (b billing) prorationItem(sub *subscription, amount int64, desc string) {
	if amount == 0 {
		return
	}
	ii := &invoiceItem{id: b.s.stripeID("ii"), customer: sub.customer, amount: amount, unitAmount: amount, quantity: 1,
		currency: sub.currency, description: desc, subscription: sub.id, proration: true, created: b.now}
	b.a.invoiceItems.put(ii.id, ii)
}

func subCancel(c *stripeCall) (any, *stripeError) {
	sub, e := c.sub()
	if e != nil {
		return nil, e
	}
	if sub.status == "canceled" {
		return nil, errState("resource_missing", "", "No such subscription: '%s' (already canceled)", sub.id)
	}
	invoiceNow, e := c.p.bool("invoice_now", false)
	if e != nil {
		return nil, e
	}
	prorateIt, e := c.p.bool("prorate", false)
	if e != nil {
		return nil, e
	}
	b := c.billing()
	if prorateIt && sub.status == "active" {
		b.prorationItem(sub, -prorate(sub.total(), sub.periodEnd.Sub(c.now), sub.periodEnd.Sub(sub.periodStart)), "Unused time after cancellation")
	}
	sub.status, sub.canceledAt = "canceled", c.now
	if invoiceNow {
		inv := b.newInvoice(sub.customer, sub.id, sub.currency, sub.collection, "subscription_cycle", true)
		b.attachPending(inv, sub.id)
		if len(inv.lines) > 0 {
			sub.latestInvoice = inv.id
			if e := b.finalizeAndCollect(inv); e != nil {
				return nil, e
			}
		} else {
			c.acct.invoices.del(inv.id)
		}
	}
	return sub.render(), nil
}
