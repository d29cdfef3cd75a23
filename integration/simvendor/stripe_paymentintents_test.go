package simvendor

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func manualPI(t *testing.T, e *env, amount string, extra ...string) resp {
	t.Helper()
	f := form(append([]string{"amount", amount, "currency", "usd", "capture_method", "manual",
		"confirm", "true", "payment_method", "pm_card_visa"}, extra...)...)
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", f)
	wantStatus(t, r, 200)
	if r.str("status") != "requires_capture" {
		t.Fatalf("not authorised: %s", r.raw)
	}
	return r
}

// Issue 5: create in USD, switch to GBP, confirm: the money moved is the
// GBP amount converted.
func TestStripeCurrencySwitchBeforeConfirm(t *testing.T) {
	e := newEnv(t)
	pi := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "100000", "currency", "usd"))
	id := pi.str("id")
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id, form("currency", "gbp")), 200)
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/confirm", form("payment_method", "pm_card_visa"))
	wantStatus(t, r, 200)
	if r.str("status") != "succeeded" || r.num("amount_received") != 100000 || r.str("currency") != "gbp" {
		t.Fatalf("confirm: %s", r.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 1_270_000_000) // £1,000 at $1.27
	// Once succeeded, amount and currency are frozen; metadata is not.
	upd := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id, form("amount", "5"))
	wantStatus(t, upd, 400)
	if upd.str("error", "code") != "payment_intent_unexpected_state" || upd.str("error", "param") != "amount" {
		t.Fatalf("update succeeded intent: %s", upd.raw)
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id, form("metadata[k]", "v")), 200)
}

func TestStripeZeroAndThreeDecimalCurrencies(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "1000", "currency", "jpy", "confirm", "true", "payment_method", "pm_card_visa")), 200)
	wantMoved(t, e.sim, VendorStripe, 6_700_000) // ¥1,000 at $0.0067
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "1500", "currency", "kwd", "confirm", "true", "payment_method", "pm_card_visa")), 200)
	wantMoved(t, e.sim, VendorStripe, 6_700_000+4_875_000) // 1.500 KWD at $3.25
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "100", "currency", "eur"))
	wantStatus(t, r, 500)
	if len(e.sim.Problems()) == 0 {
		t.Fatal("a currency without a rate must be a problem")
	}
}

// Issue 4: capture above the authorisation only with overcapture, and only
// up to the bound.
func TestStripeOvercapture(t *testing.T) {
	e := newEnv(t)
	plain := manualPI(t, e, "1000")
	late := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+plain.str("id"),
		form("payment_method_options[card][request_overcapture]", "if_available"))
	wantStatus(t, late, 400)
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+plain.str("id")+"/capture", form("amount_to_capture", "1200"))
	wantStatus(t, r, 400)
	if r.str("error", "code") != "amount_too_large" {
		t.Fatalf("capture above without overcapture: %s", r.raw)
	}
	over := manualPI(t, e, "1000", "payment_method_options[card][request_overcapture]", "if_available")
	r = e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+over.str("id")+"/capture", form("amount_to_capture", "1301"))
	wantStatus(t, r, 400)
	r = e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+over.str("id")+"/capture", form("amount_to_capture", "1300"))
	wantStatus(t, r, 200)
	if r.num("amount_received") != 1300 || r.str("status") != "succeeded" {
		t.Fatalf("overcapture: %s", r.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 13_000_000)
	if got := e.sim.Authorized(VendorStripe); got != 10_000_000 {
		t.Fatalf("Authorized = %d (the plain intent's hold)", got)
	}
	ch := e.stripeReq(t, http.MethodGet, "/v1/charges/"+r.str("latest_charge"), nil)
	if ch.num("payment_method_details", "card", "overcapture", "maximum_amount_capturable") != 1300 {
		t.Fatalf("charge: %s", ch.raw)
	}
}

func TestStripePartialCaptureReleasesTheRest(t *testing.T) {
	e := newEnv(t)
	pi := manualPI(t, e, "5000")
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+pi.str("id")+"/capture", form("amount_to_capture", "1800"))
	wantStatus(t, r, 200)
	if r.num("amount_capturable") != 0 || r.str("status") != "succeeded" {
		t.Fatalf("partial: %s", r.raw)
	}
	wantMoved(t, e.sim, VendorStripe, 18_000_000)
	if e.sim.Authorized(VendorStripe) != 0 {
		t.Fatal("hold not released")
	}
	again := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+pi.str("id")+"/capture", nil)
	wantStatus(t, again, 400)
}

func TestStripeMulticapture(t *testing.T) {
	e := newEnv(t)
	plain := manualPI(t, e, "1000")
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+plain.str("id")+"/capture",
		form("amount_to_capture", "100", "final_capture", "false")), 400)
	pi := manualPI(t, e, "1000", "payment_method_options[card][request_multicapture]", "if_available")
	id := pi.str("id")
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/capture", form("amount_to_capture", "400", "final_capture", "false"))
	wantStatus(t, r, 200)
	if r.str("status") != "requires_capture" || r.num("amount_capturable") != 600 {
		t.Fatalf("first capture: %s", r.raw)
	}
	r = e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/capture", form("amount_to_capture", "700"))
	wantStatus(t, r, 400)
	r = e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/capture", nil)
	wantStatus(t, r, 200)
	wantMoved(t, e.sim, VendorStripe, 10_000_000)
	if got := e.sim.Authorized(VendorStripe); got != 10_000_000 {
		t.Fatalf("Authorized = %d (only the plain hold)", got)
	}
}

func TestStripeIncrementAuthorization(t *testing.T) {
	e := newEnv(t)
	plain := manualPI(t, e, "1000")
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+plain.str("id")+"/increment_authorization", form("amount", "2000")), 400)
	pi := manualPI(t, e, "1000", "payment_method_options[card][request_incremental_authorization]", "if_available")
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+pi.str("id")+"/increment_authorization", form("amount", "2500"))
	wantStatus(t, r, 200)
	if r.num("amount") != 2500 || r.num("amount_capturable") != 2500 {
		t.Fatalf("increment: %s", r.raw)
	}
	if got := e.sim.Authorized(VendorStripe); got != 35_000_000 {
		t.Fatalf("Authorized = %d", got)
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+pi.str("id")+"/capture", nil), 200)
	wantMoved(t, e.sim, VendorStripe, 25_000_000)
}

func TestStripeCancelAndLapse(t *testing.T) {
	e := newEnv(t)
	a := manualPI(t, e, "1000")
	b := manualPI(t, e, "2000")
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+a.str("id")+"/cancel", form("cancellation_reason", "abandoned"))
	wantStatus(t, r, 200)
	if r.str("status") != "canceled" {
		t.Fatalf("cancel: %s", r.raw)
	}
	if got := e.sim.Authorized(VendorStripe); got != 20_000_000 {
		t.Fatalf("Authorized = %d", got)
	}
	e.clock.Advance(7 * 24 * time.Hour)
	if got := e.sim.Authorized(VendorStripe); got != 0 {
		t.Fatalf("Authorized after 7 days = %d", got)
	}
	r = e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+b.str("id")+"/capture", nil)
	wantStatus(t, r, 400)
	wantMoved(t, e.sim, VendorStripe, 0)
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+a.str("id")+"/cancel", nil), 400)
}

func TestStripeConfirmRules(t *testing.T) {
	e := newEnv(t)
	pi := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "1000", "currency", "usd"))
	id := pi.str("id")
	r := e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/confirm", nil)
	wantStatus(t, r, 400)
	if r.str("error", "code") != "payment_intent_unexpected_state" {
		t.Fatalf("confirm without payment method: %s", r.raw)
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/confirm", form("payment_method", "pm_nope")), 404)
	// payment_method_options[card][capture_method]=manual overrides automatic capture.
	r = e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/confirm",
		form("payment_method", "pm_card_visa", "payment_method_options[card][capture_method]", "manual"))
	wantStatus(t, r, 200)
	if r.str("status") != "requires_capture" {
		t.Fatalf("card capture_method override: %s", r.raw)
	}
	wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents/"+id+"/confirm", nil), 400)
	wantMoved(t, e.sim, VendorStripe, 0)
	big := e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "100000000", "currency", "usd"))
	wantStatus(t, big, 400)
	if big.str("error", "code") != "amount_too_large" {
		t.Fatalf("too large: %s", big.raw)
	}
}

func TestStripeSearch(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"a", "b", "a"} {
		wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "100", "currency", "usd", "metadata[k]", m)), 200)
	}
	// Search is eventually consistent: nothing is found before the lag.
	r := e.stripeReq(t, http.MethodGet, "/v1/payment_intents/search", form("query", "metadata['k']:'a'"))
	if n := len(r.get("data").([]any)); n != 0 {
		t.Fatalf("search found new intents at once: %s", r.raw)
	}
	if n := len(e.stripeReq(t, http.MethodGet, "/v1/payment_intents", form("limit", "100")).get("data").([]any)); n != 3 {
		t.Fatalf("list shows %d of 3 new intents; a list is consistent", n)
	}
	e.clock.Advance(DefaultStripeSearchLag)
	r = e.stripeReq(t, http.MethodGet, "/v1/payment_intents/search", form("query", "metadata['k']:'a'"))
	wantStatus(t, r, 200)
	if n := len(r.get("data").([]any)); n != 2 || r.str("object") != "search_result" {
		t.Fatalf("search: %s", r.raw)
	}
	r = e.stripeReq(t, http.MethodGet, "/v1/payment_intents/search", form("query", "metadata['k']:'b' AND amount>50 AND -status:'succeeded'"))
	if n := len(r.get("data").([]any)); n != 1 {
		t.Fatalf("search AND: %s", r.raw)
	}
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/payment_intents/search", form("query", "bogus")), 400)
}

// TestStripeListPages: created filters, limit, starting_after and has_more,
// as Keybrake's reconciler pages through a call's window.
func TestStripeListPages(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now().Unix()
	for i := range 5 {
		wantStatus(t, e.stripeReq(t, http.MethodPost, "/v1/payment_intents", form("amount", "100", "currency", "usd")), 200)
		if i == 2 {
			e.clock.Advance(time.Minute)
		}
	}
	ids := func(r resp) []string {
		var out []string
		for _, o := range r.get("data").([]any) {
			out = append(out, o.(map[string]any)["id"].(string))
		}
		return out
	}
	all := ids(e.stripeReq(t, http.MethodGet, "/v1/payment_intents", form("limit", "100")))
	if len(all) != 5 {
		t.Fatalf("list = %v", all)
	}
	recent := e.stripeReq(t, http.MethodGet, "/v1/payment_intents", form("limit", "2", "created[gte]", fmt.Sprint(start+60)))
	if got := ids(recent); len(got) != 2 || got[0] != all[0] || recent.get("has_more") != false {
		t.Fatalf("recent = %v (has_more %v); want the 2 made a minute later", got, recent.get("has_more"))
	}
	first := e.stripeReq(t, http.MethodGet, "/v1/payment_intents", form("limit", "2", "created[lte]", fmt.Sprint(start)))
	if got := ids(first); len(got) != 2 || got[0] != all[2] || first.get("has_more") != true {
		t.Fatalf("first older page = %v (has_more %v)", got, first.get("has_more"))
	}
	next := e.stripeReq(t, http.MethodGet, "/v1/payment_intents", form("limit", "2", "created[lte]", fmt.Sprint(start), "starting_after", all[3]))
	if got := ids(next); len(got) != 1 || got[0] != all[4] || next.get("has_more") != false {
		t.Fatalf("last page = %v (has_more %v)", got, next.get("has_more"))
	}
	wantStatus(t, e.stripeReq(t, http.MethodGet, "/v1/payment_intents", form("limit", "101")), 400)
}
