package simvendor

import (
	"net/http"
	"time"
)

// Invoices, after https://docs.stripe.com/api/invoices and
// https://docs.stripe.com/invoicing/integration/automatic-advancement-collection:
//
//   - POST /v1/invoices creates a draft (auto_advance defaults to false for
//     invoices made through the API; pending_invoice_items_behavior defaults
//     to "exclude"). Items are added with POST /v1/invoiceitems invoice=….
//   - finalize: draft → open; the customer's credit balance is applied;
//     an invoice with nothing due is paid at once (no money moves).
//   - pay: collects amount_due (a draft is finalized first); money moves.
//     paid_out_of_band=true marks it paid with no money moved through Stripe.
//   - auto_advance=true: Stripe finalizes a draft about an hour after it is
//     created and then collects it when collection_method is
//     charge_automatically. The simulator does both when its clock passes
//     created + 1h, and collects at once an auto_advance invoice finalized
//     by hand (worst case: Stripe may wait for its retry schedule).
//
// Simplification: payment never fails (every customer is taken to have a
// working default card, even with none attached), taxes, discounts and
// payment retries are not simulated.
type invoiceLine struct {
	id          string
	amount      int64
	description string
	proration   bool
	quantity    int64
	price       string
	item        string
}

type invoice struct {
	id              string
	customer        string
	subscription    string
	status          string
	currency        string
	collection      string
	billingReason   string
	autoAdvance     bool
	lines           []invoiceLine
	amountDue       int64
	amountPaid      int64
	startingBalance int64
	created         time.Time
	finalizedAt     time.Time
	paidOutOfBand   bool
	metadata        map[string]string
	description     string
}

func (inv *invoice) total() int64 {
	var t int64
	for _, l := range inv.lines {
		t += l.amount
	}
	return t
}

func (inv *invoice) render() obj {
	lines := []any{}
	for _, l := range inv.lines {
		lines = append(lines, obj{"id": l.id, "object": "line_item", "amount": l.amount, "currency": inv.currency,
			"description": nullable(l.description), "proration": l.proration, "quantity": l.quantity,
			"price": nullable(l.price), "invoice_item": nullable(l.item)})
	}
	var parent any
	if inv.subscription != "" {
		parent = obj{"type": "subscription_details", "subscription_details": obj{"subscription": inv.subscription}}
	}
	var finalized any
	if !inv.finalizedAt.IsZero() {
		finalized = inv.finalizedAt.Unix()
	}
	return obj{"id": inv.id, "object": "invoice", "customer": inv.customer, "subscription": nullable(inv.subscription),
		"parent": parent, "status": inv.status, "currency": inv.currency, "auto_advance": inv.autoAdvance,
		"collection_method": inv.collection, "billing_reason": nullable(inv.billingReason),
		"amount_due": inv.amountDue, "amount_paid": inv.amountPaid, "amount_remaining": inv.amountDue - inv.amountPaid,
		"total": inv.total(), "subtotal": inv.total(), "starting_balance": inv.startingBalance,
		"paid": inv.status == "paid", "paid_out_of_band": inv.paidOutOfBand,
		"lines": list("/v1/invoices/"+inv.id+"/lines", lines), "created": inv.created.Unix(),
		"status_transitions": obj{"finalized_at": finalized}, "livemode": false,
		"metadata": orEmpty(inv.metadata), "description": nullable(inv.description)}
}

// billing runs invoice and subscription work for one account, from a
// request or from the clock.
type billing struct {
	s       *Sim
	a       *stripeAccount
	account string
	now     time.Time
}

func (c *stripeCall) billing() billing {
	return billing{s: c.s, a: c.acct, account: c.account, now: c.now}
}

// newInvoice creates a draft invoice.
func (b billing) newInvoice(cus, sub, currency, collection, reason string, autoAdvance bool) *invoice {
	inv := &invoice{id: b.s.stripeID("in"), customer: cus, subscription: sub, status: "draft", currency: currency,
		collection: collection, billingReason: reason, autoAdvance: autoAdvance, created: b.now}
	b.a.invoices.put(inv.id, inv)
	return inv
}

// attach puts a pending invoice item on inv.
func (b billing) attach(inv *invoice, ii *invoiceItem) {
	ii.invoice = inv.id
	inv.lines = append(inv.lines, invoiceLine{id: b.s.stripeID("il"), amount: ii.amount, description: ii.description,
		proration: ii.proration, quantity: ii.quantity, price: ii.price, item: ii.id})
}

// attachPending adds the customer's pending items (of sub, when sub is set).
func (b billing) attachPending(inv *invoice, sub string) {
	for _, ii := range b.a.invoiceItems.newestFirst() {
		if ii.invoice == "" && ii.customer == inv.customer && ii.currency == inv.currency && (sub == "" || ii.subscription == sub) {
			b.attach(inv, ii)
		}
	}
}

// finalize turns a draft into an open (or, with nothing due, paid) invoice.
func (b billing) finalize(inv *invoice) *stripeError {
	if inv.status != "draft" {
		return errState("invoice_not_editable", "", "This invoice is already finalized, you can't re-finalize a non-draft invoice.")
	}
	total := inv.total()
	bal := b.a.customerBalance(inv.customer)
	inv.startingBalance = bal
	if total <= 0 {
		b.a.setCustomerBalance(inv.customer, bal+total)
		inv.amountDue = 0
	} else {
		credit := int64(0)
		if bal < 0 {
			credit = min(total, -bal)
		}
		inv.amountDue = total - credit
		b.a.setCustomerBalance(inv.customer, bal+credit)
	}
	inv.status = "open"
	inv.finalizedAt = b.now
	if inv.amountDue == 0 {
		inv.status = "paid"
	}
	return nil
}

// collect charges an open invoice's amount due.
func (b billing) collect(inv *invoice) *stripeError {
	if inv.status != "open" {
		return nil
	}
	micros, err := b.s.toMicros(inv.amountDue, inv.currency)
	if err != nil {
		return errNoRate(inv.currency)
	}
	b.s.record(Event{Vendor: VendorStripe, Account: b.account, Object: inv.id, Kind: KindInvoicePaid,
		Micros: micros, Amount: inv.amountDue, Unit: inv.currency, At: b.now, Note: "invoice paid (" + inv.billingReason + ")"})
	inv.amountPaid = inv.amountDue
	inv.status = "paid"
	if sub, ok := b.a.subs.get(inv.subscription); ok && sub.status == "incomplete" && sub.latestInvoice == inv.id {
		sub.status = "active"
	}
	return nil
}

// finalizeAndCollect is what Stripe does with a subscription's invoice.
func (b billing) finalizeAndCollect(inv *invoice) *stripeError {
	if e := b.finalize(inv); e != nil {
		return e
	}
	if inv.collection == "charge_automatically" {
		return b.collect(inv)
	}
	return nil
}

func invoiceRoutes() []stripeRoute {
	base := "/v1/invoices"
	return []stripeRoute{
		route(http.MethodPost, base, invoiceCreate),
		route(http.MethodGet, base, invoiceList),
		route(http.MethodGet, base+"/"+idPat, invoiceRetrieve),
		route(http.MethodPost, base+"/"+idPat, invoiceUpdate),
		route(http.MethodDelete, base+"/"+idPat, invoiceDelete),
		route(http.MethodPost, base+"/"+idPat+"/finalize", invoiceFinalize),
		route(http.MethodPost, base+"/"+idPat+"/pay", invoicePay),
		route(http.MethodPost, base+"/"+idPat+"/void", invoiceVoid),
	}
}

func (c *stripeCall) invoice() (*invoice, *stripeError) {
	inv, ok := c.acct.invoices.get(c.m[1])
	if !ok {
		return nil, errNoSuch("invoice", c.m[1], "invoice")
	}
	return inv, nil
}

func invoiceCreate(c *stripeCall) (any, *stripeError) {
	cus := c.p.str("customer")
	if cus == "" {
		return nil, errMissing("customer")
	}
	if _, ok := c.acct.customers.get(cus); !ok {
		return nil, errNoSuch("customer", cus, "customer")
	}
	auto, e := c.p.bool("auto_advance", false)
	if e != nil {
		return nil, e
	}
	coll := c.p.str("collection_method")
	switch coll {
	case "":
		coll = "charge_automatically"
	case "charge_automatically":
	case "send_invoice":
		if !c.p.has("days_until_due") && !c.p.has("due_date") {
			return nil, errMissing("days_until_due")
		}
	default:
		return nil, errInvalidParam("collection_method", "Invalid collection_method.")
	}
	cur := "usd"
	if c.p.has("currency") {
		if cur, e = c.currencyParam("currency", true); e != nil {
			return nil, e
		}
	}
	sub := c.p.str("subscription")
	if sub != "" {
		if _, ok := c.acct.subs.get(sub); !ok {
			return nil, errNoSuch("subscription", sub, "subscription")
		}
	}
	behavior := c.p.str("pending_invoice_items_behavior")
	if behavior != "" && behavior != "include" && behavior != "exclude" {
		return nil, errInvalidParam("pending_invoice_items_behavior", "Invalid pending_invoice_items_behavior.")
	}
	b := c.billing()
	inv := b.newInvoice(cus, sub, cur, coll, "manual", auto)
	inv.metadata = mergeMetadata(nil, c.p)
	inv.description = c.p.str("description")
	if behavior == "include" {
		b.attachPending(inv, sub)
	}
	return inv.render(), nil
}

func invoiceRetrieve(c *stripeCall) (any, *stripeError) {
	inv, e := c.invoice()
	if e != nil {
		return nil, e
	}
	return inv.render(), nil
}

func invoiceList(c *stripeCall) (any, *stripeError) {
	var data []any
	for _, inv := range c.acct.invoices.newestFirst() {
		if (c.p.str("customer") == "" || inv.customer == c.p.str("customer")) &&
			(c.p.str("subscription") == "" || inv.subscription == c.p.str("subscription")) {
			data = append(data, inv.render())
		}
	}
	return list("/v1/invoices", c.listLimit(data)), nil
}

func invoiceUpdate(c *stripeCall) (any, *stripeError) {
	inv, e := c.invoice()
	if e != nil {
		return nil, e
	}
	if c.p.has("auto_advance") {
		if inv.status != "draft" && inv.status != "open" {
			return nil, errState("invoice_not_editable", "auto_advance", "auto_advance can only be changed on draft or open invoices.")
		}
		if inv.autoAdvance, e = c.p.bool("auto_advance", false); e != nil {
			return nil, e
		}
	}
	if c.p.has("description") {
		inv.description = c.p.str("description")
	}
	inv.metadata = mergeMetadata(inv.metadata, c.p)
	if inv.autoAdvance && inv.status == "open" && inv.collection == "charge_automatically" {
		if e := c.billing().collect(inv); e != nil {
			return nil, e
		}
	}
	return inv.render(), nil
}

func invoiceDelete(c *stripeCall) (any, *stripeError) {
	inv, e := c.invoice()
	if e != nil {
		return nil, e
	}
	if inv.status != "draft" {
		return nil, errState("invoice_not_editable", "", "You can only delete draft invoices.")
	}
	for _, l := range inv.lines {
		if ii, ok := c.acct.invoiceItems.get(l.item); ok {
			ii.invoice = ""
		}
	}
	c.acct.invoices.del(inv.id)
	return obj{"id": inv.id, "object": "invoice", "deleted": true}, nil
}

func invoiceFinalize(c *stripeCall) (any, *stripeError) {
	inv, e := c.invoice()
	if e != nil {
		return nil, e
	}
	if c.p.has("auto_advance") {
		if inv.autoAdvance, e = c.p.bool("auto_advance", false); e != nil {
			return nil, e
		}
	}
	b := c.billing()
	if e := b.finalize(inv); e != nil {
		return nil, e
	}
	if inv.autoAdvance && inv.collection == "charge_automatically" {
		if e := b.collect(inv); e != nil {
			return nil, e
		}
	}
	return inv.render(), nil
}

func invoicePay(c *stripeCall) (any, *stripeError) {
	inv, e := c.invoice()
	if e != nil {
		return nil, e
	}
	oob, e := c.p.bool("paid_out_of_band", false)
	if e != nil {
		return nil, e
	}
	b := c.billing()
	switch inv.status {
	case "paid":
		return nil, errState("invoice_already_paid", "", "Invoice is already paid.")
	case "void", "uncollectible":
		return nil, errState("invoice_not_editable", "", "This invoice can no longer be paid (status %s).", inv.status)
	case "draft":
		if e := b.finalize(inv); e != nil {
			return nil, e
		}
	}
	if inv.status == "open" && oob {
		inv.status, inv.paidOutOfBand = "paid", true
		return inv.render(), nil
	}
	if e := b.collect(inv); e != nil {
		return nil, e
	}
	return inv.render(), nil
}

func invoiceVoid(c *stripeCall) (any, *stripeError) {
	inv, e := c.invoice()
	if e != nil {
		return nil, e
	}
	if inv.status != "open" {
		return nil, errState("invoice_not_editable", "", "You can only void an open invoice (status %s).", inv.status)
	}
	inv.status = "void"
	inv.autoAdvance = false
	return inv.render(), nil
}
