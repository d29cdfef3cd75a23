package simvendor

import (
	"net/http"
	"testing"
	"time"
)

// billingSetup makes a customer and a daily price of unit cents.
func billingSetup(t *testing.T, e *env, unit string) (cus, price string) {
	t.Helper()
	c := e.stripeReq(t, http.MethodPost, "/v1/customers", form("email", "a@example.com"))
	wantStatus(t, c, 200)
	p := e.stripeReq(t, http.MethodPost, "/v1/prices", form("unit_amount", unit, "currency", "usd",
		"recurring[interval]", "day", "product_data[name]", "Plan"))
	wantStatus(t, p, 200)
	return c.str("id"), p.str("id")
}

func TestStripeSubscriptionChargesFirstInvoiceAndRenews(t *testing.T) {
	e := newEnv(t)
	cus, price := billingSetup(t, e, "1500")
	sub := e.stripeReq(t, http.MethodPost, "/v1/subscriptions", form("customer", cus, "items[0][price]", price, "items[0][quantity]", "2"))
	wantStatus(t, sub, 200)
	if sub.str("status") != "active" {
		t.Fatalf("sub: %s", sub.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 30_000_000)
	inv := e.stripeReq(t, http.MethodGet, "/v1/invoices/"+sub.str("latest_invoice"), nil)
	if inv.str("status") != "paid" || inv.num("amount_paid") != 3000 {
		t.Fatalf("first invoice: %s", inv.raw)
	}
	e.clock.Advance(24 * time.Hour)
	wantMoved(t, e.sim, VendorStripe, 60_000_000) // the clock renewed it
	e.clock.Advance(48 * time.Hour)
	wantMoved(t, e.sim, VendorStripe, 120_000_000)
	wantStatus(t, e.stripeReq(t, http.MethodDelete, "/v1/subscriptions/"+sub.str("id"), nil), 200)
	e.clock.Advance(72 * time.Hour)
	wantMoved(t, e.sim, VendorStripe, 120_000_000)
}

func TestStripeSubscriptionTrialAndIncomplete(t *testing.T) {
	e := newEnv(t)
	cus, price := billingSetup(t, e, "1000")
	trial := e.stripeReq(t, http.MethodPost, "/v1/subscriptions", form("customer", cus, "items[0][price]", price, "trial_period_days", "3"))
	wantStatus(t, trial, 200)
	if trial.str("status") != "trialing" {
		t.Fatalf("trial: %s", trial.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 0)

	inc := e.stripeReq(t, http.MethodPost, "/v1/subscriptions", form("customer", cus, "items[0][price]", price, "payment_behavior", "default_incomplete"))
	if inc.str("status") != "incomplete" {
		t.Fatalf("incomplete: %s", inc.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 0)
	paid := e.stripeReq(t, http.MethodPost, "/v1/invoices/"+inc.str("latest_invoice")+"/pay", nil)
	wantStatus(t, paid, 200)
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
	if s := e.stripeReq(t, http.MethodGet, "/v1/subscriptions/"+inc.str("id"), nil); s.str("status") != "active" {
		t.Fatalf("after pay: %s", s.raw)
	}

	lapsing := e.stripeReq(t, http.MethodPost, "/v1/subscriptions", form("customer", cus, "items[0][price]", price, "payment_behavior", "default_incomplete"))
	e.clock.Advance(23 * time.Hour)
	if s := e.stripeReq(t, http.MethodGet, "/v1/subscriptions/"+lapsing.str("id"), nil); s.str("status") != "incomplete_expired" {
		t.Fatalf("after 23 h: %s", s.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
	e.clock.Advance(25 * time.Hour) // the paid one renewed on the 16th and 17th
	wantMoved(t, e.sim, VendorStripe, 30_000_000)
	e.clock.Advance(24 * time.Hour) // the 18th: the trial ends (first charge), the paid one renews
	wantMoved(t, e.sim, VendorStripe, 50_000_000)
}

func TestStripeSubscriptionProrations(t *testing.T) {
	e := newEnv(t)
	cus, price := billingSetup(t, e, "1000")
	sub := e.stripeReq(t, http.MethodPost, "/v1/subscriptions", form("customer", cus, "items[0][price]", price))
	item := sub.get("items", "data").([]any)[0].(map[string]any)["id"].(string)
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
	e.clock.Advance(6 * time.Hour) // 18 of 24 hours left
	up := e.stripeReq(t, http.MethodPost, "/v1/subscriptions/"+sub.str("id"),
		form("items[0][id]", item, "items[0][quantity]", "3", "proration_behavior", "always_invoice"))
	wantStatus(t, up, 200)
	wantMoved(t, e.sim, VendorStripe, 25_000_000) // -750 + 2250
	// Back down to 1 with create_prorations: a credit waits for the next invoice.
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/subscriptions/"+sub.str("id"),
		form("items[0][id]", item, "items[0][quantity]", "1")), 200)
	wantMoved(t, e.sim, VendorStripe, 25_000_000)
	e.clock.Advance(18 * time.Hour)
	wantMoved(t, e.sim, VendorStripe, 25_000_000) // 1000 - 2250 + 750 = -500: nothing due, 500 credit
	e.clock.Advance(24 * time.Hour)
	wantMoved(t, e.sim, VendorStripe, 30_000_000) // 1000 - 500 credit
	// billing_cycle_anchor=now bills a new period at once.
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/subscriptions/"+sub.str("id"),
		form("items[0][id]", item, "items[0][quantity]", "2", "billing_cycle_anchor", "now", "proration_behavior", "none")), 200)
	wantMoved(t, e.sim, VendorStripe, 50_000_000)
}

func TestStripeInvoices(t *testing.T) {
	e := newEnv(t)
	cus, _ := billingSetup(t, e, "1000")
	inv := e.stripeReq(t, http.MethodPost, "/v1/invoices", form("customer", cus))
	wantStatus(t, inv, 200)
	if inv.str("status") != "draft" || inv.get("auto_advance") != false {
		t.Fatalf("draft: %s", inv.raw)
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/invoiceitems", form("customer", cus, "amount", "700", "currency", "usd", "invoice", inv.str("id"))), 200)
	fin := e.stripeReq(t, http.MethodPost, "/v1/invoices/"+inv.str("id")+"/finalize", nil)
	if fin.str("status") != "open" || fin.num("amount_due") != 700 {
		t.Fatalf("finalize: %s", fin.raw)
	}
	e.clock.Advance(48 * time.Hour)
	wantMoved(t, e.sim, VendorStripe, 0)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/invoices/"+inv.str("id")+"/pay", nil), 200)
	wantMoved(t, e.sim, VendorStripe, 7_000_000)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/invoices/"+inv.str("id")+"/pay", nil), 400)

	// auto_advance: Stripe finalizes and collects an hour after creation.
	auto := e.stripeReq(t, http.MethodPost, "/v1/invoices", form("customer", cus, "auto_advance", "true"))
	e.stripeReq(t, http.MethodPost, "/v1/invoiceitems", form("customer", cus, "amount", "300", "currency", "usd", "invoice", auto.str("id")))
	e.clock.Advance(59 * time.Minute)
	wantMoved(t, e.sim, VendorStripe, 7_000_000)
	e.clock.Advance(time.Minute)
	wantMoved(t, e.sim, VendorStripe, 10_000_000)

	// Pending items join an invoice only with pending_invoice_items_behavior=include.
	e.stripeReq(t, http.MethodPost, "/v1/invoiceitems", form("customer", cus, "amount", "200", "currency", "usd"))
	ex := e.stripeReq(t, http.MethodPost, "/v1/invoices", form("customer", cus))
	if ex.num("total") != 0 {
		t.Fatalf("excluded: %s", ex.raw)
	}
	in := e.stripeReq(t, http.MethodPost, "/v1/invoices", form("customer", cus, "pending_invoice_items_behavior", "include"))
	if in.num("total") != 200 {
		t.Fatalf("included: %s", in.raw)
	}
	oob := e.stripeReq(t, http.MethodPost, "/v1/invoices/"+in.str("id")+"/pay", form("paid_out_of_band", "true"))
	if oob.str("status") != "paid" {
		t.Fatalf("out of band: %s", oob.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
}
