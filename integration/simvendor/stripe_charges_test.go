package simvendor

import (
	"net/http"
	"testing"
	"time"
)

func TestStripeChargesAndRefunds(t *testing.T) {
	e := newEnv(t)
	ch := e.stripeReq(t, http.MethodPost, "/v1/charges", form("amount", "2000", "currency", "usd", "source", "tok_visa"))
	wantStatus(t, ch, 200)
	wantMoved(t, e.sim, VendorStripe, 20_000_000)

	hold := e.stripeReq(t, http.MethodPost, "/v1/charges", form("amount", "3000", "currency", "usd", "source", "tok_visa", "capture", "false"))
	wantStatus(t, hold, 200)
	wantMoved(t, e.sim, VendorStripe, 20_000_000)
	if e.sim.Authorized(VendorStripe) != 30_000_000 {
		t.Fatal("uncaptured charge is a hold")
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/charges/"+hold.str("id")+"/capture", form("amount", "3001")), 400)
	c := e.stripeReq(t, http.MethodPost, "/v1/charges/"+hold.str("id")+"/capture", form("amount", "2500"))
	wantStatus(t, c, 200)
	wantMoved(t, e.sim, VendorStripe, 45_000_000)
	if e.sim.Authorized(VendorStripe) != 0 {
		t.Fatal("capture releases the hold")
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/charges/"+hold.str("id")+"/capture", nil), 400)

	// A refund moves money back out: it counts.
	re := e.stripeReq(t, http.MethodPost, "/v1/refunds", form("charge", ch.str("id"), "amount", "500"))
	wantStatus(t, re, 200)
	wantMoved(t, e.sim, VendorStripe, 50_000_000)
	rest := e.stripeReq(t, http.MethodPost, "/v1/refunds", form("charge", ch.str("id")))
	wantStatus(t, rest, 200)
	if rest.num("amount") != 1500 {
		t.Fatalf("remainder refund: %s", rest.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 65_000_000)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/refunds", form("charge", ch.str("id"))), 400)

	// Refund by PaymentIntent.
	pi := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form(chargeForm("1000")...))
	r := e.stripeReq(t, http.MethodPost, "/v1/refunds", form("payment_intent", pi.str("id"), "amount", "1001"))
	wantStatus(t, r, 400)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/refunds", form("payment_intent", pi.str("id"))), 200)
	wantMoved(t, e.sim, VendorStripe, 85_000_000)

	// An uncaptured charge refunded is only released; one left alone lapses.
	h2 := e.stripeReq(t, http.MethodPost, "/v1/charges", form("amount", "100", "currency", "usd", "source", "tok_visa", "capture", "false"))
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/refunds", form("charge", h2.str("id"))), 200)
	e.stripeReq(t, http.MethodPost, "/v1/charges", form("amount", "100", "currency", "usd", "source", "tok_visa", "capture", "false"))
	e.clock.Advance(8 * 24 * time.Hour)
	wantMoved(t, e.sim, VendorStripe, 85_000_000)
	if e.sim.Authorized(VendorStripe) != 0 {
		t.Fatal("holds must be gone")
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/charges", form("amount", "100", "currency", "usd", "source", "tok_chargeDeclined")), 402)
}

func TestStripeMoneyOutEndpoints(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/transfers", form("amount", "100", "currency", "usd")), 400)
	tr := e.stripeReq(t, http.MethodPost, "/v1/transfers", form("amount", "100", "currency", "usd", "destination", "acct_1"))
	wantStatus(t, tr, 200)
	if tr.str("object") != "transfer" {
		t.Fatalf("transfer: %s", tr.raw)
	}
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/transfers/"+tr.str("id"), nil), 200)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payouts", form("amount", "200", "currency", "usd")), 200)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/treasury/outbound_payments", form("amount", "300", "currency", "usd", "financial_account", "fa_1")), 200)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/treasury/outbound_transfers", form("amount", "400", "currency", "usd", "financial_account", "fa_1")), 200)
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
	card := e.stripeReq(t, http.MethodPost, "/v1/issuing/cards", form("cardholder", "ich_1", "currency", "usd", "type", "virtual"))
	wantStatus(t, card, 200)
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
	evs := e.sim.Events()
	if last := evs[len(evs)-1]; last.Kind != KindCardIssued || last.Object != card.str("id") {
		t.Fatalf("last event %+v", last)
	}
}

func TestStripeBasicObjectsMoveNothing(t *testing.T) {
	e := newEnv(t)
	cus := e.stripeReq(t, http.MethodPost, "/v1/customers", form("email", "a@example.com", "metadata[x]", "1"))
	wantStatus(t, cus, 200)
	upd := e.stripeReq(t, http.MethodPost, "/v1/customers/"+cus.str("id"), form("name", "A", "metadata[x]", ""))
	if upd.str("name") != "A" || len(upd.get("metadata").(map[string]any)) != 0 {
		t.Fatalf("update: %s", upd.raw)
	}
	pm := e.stripeReq(t, http.MethodPost, "/v1/payment_methods", form("type", "card", "card[token]", "tok_visa"))
	wantStatus(t, pm, 200)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_methods/"+pm.str("id")+"/attach", form("customer", cus.str("id"))), 200)
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/payment_methods/pm_card_visa", nil), 200)
	prod := e.stripeReq(t, http.MethodPost, "/v1/products", form("name", "Widget"))
	wantStatus(t, prod, 200)
	list := e.stripeReq(t, http.MethodGet, "/v1/products", nil)
	if len(list.get("data").([]any)) != 1 {
		t.Fatalf("list: %s", list.raw)
	}
	wantStatus(t, e.stripeReq(t, http.MethodDelete, "/v1/customers/"+cus.str("id"), nil), 200)
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/customers/"+cus.str("id"), nil), 404)
	declPM := e.stripeReq(t, http.MethodPost, "/v1/payment_methods", form("type", "card", "card[token]", "tok_chargeDeclined"))
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "100", "currency", "usd", "confirm", "true", "payment_method", declPM.str("id")))
	wantStatus(t, r, 402)
	wantMoved(t, e.sim, VendorStripe, 0)
}
