package integration

import (
	"net/http"
	"strconv"
)

// stripeCurrency picks usd most often, the foreign currencies the
// simulator and Keybrake both price (gbp; jpy, zero-decimal; kwd,
// three-decimal), one neither prices, and usd spelled in capitals.
func (s *capSeq) stripeCurrency() (string, int64) {
	switch s.rng.IntN(8) {
	case 0:
		// £ amounts in pence, a little below the dollar figure.
		return "gbp", max(s.cents()*100/127, 1)
	case 1:
		return "jpy", max(s.cents()*100/67, 1)
	case 2:
		// Kuwaiti dinar: amounts in fils, a thousandth; $3.25 a dinar.
		return "kwd", max(s.cents()*1000/325, 1)
	case 3:
		return []string{"USD", "eur", "xyz", ""}[s.rng.IntN(4)], s.cents()
	}
	return "usd", s.cents()
}

// stripeAmount is amount most often, else a value from the edges of
// Stripe's documented input space: 0, 1, below the $0.50 minimum charge,
// the minimum, the cap to the cent and a cent above, the largest amount
// (99,999,999, eight digits) and one more, or no integer at all.
func (s *capSeq) stripeAmount(amount int64) string {
	if s.rng.IntN(4) > 0 {
		return itoa(amount)
	}
	capCents := int64(s.cap) / 10_000
	edges := []string{"0", "1", "49", "50", "51", "99", "100", itoa(capCents), itoa(capCents + 1),
		"99999999", "100000000", "9223372036854775807", "9223372036854775808",
		"", "-1", "-50", "1.5", "50.00", "+50", "0050", "1e3", " 50", "abc", "０"}
	return edges[s.rng.IntN(len(edges))]
}

func (s *capSeq) maybeIdem(hdr []string) []string {
	if s.rng.IntN(3) == 0 {
		return append(hdr, "Idempotency-Key", "idem"+strconv.Itoa(s.rng.IntN(4)))
	}
	return hdr
}

func (s *capSeq) maybeAccount(hdr []string) []string {
	if s.rng.IntN(5) == 0 {
		return append(hdr, "Stripe-Account", []string{"acct_A", "acct_B"}[s.rng.IntN(2)])
	}
	return hdr
}

func (s *capSeq) rememberIntent(r capResponse) string {
	id := jsonField(r.body, "id")
	if r.status == 200 && id != "" {
		s.mu.Lock()
		s.intents = append(s.intents, id)
		s.mu.Unlock()
	}
	return id
}

// anIntent is an intent this sequence made, or one made elsewhere.
func (s *capSeq) anIntent() string {
	s.mu.Lock()
	n := len(s.intents)
	s.mu.Unlock()
	if n == 0 || s.rng.IntN(4) == 0 {
		return outsideIntent(s.t, s.sim, s.cents(), "")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.intents[s.rng.IntN(len(s.intents))]
}

var stripeOps = []capOp{
	{"charge", func(s *capSeq) {
		cur, amt := s.stripeCurrency()
		hdr := s.maybeAccount(s.maybeIdem(nil))
		s.rememberIntent(s.do(stripePost("/v1/payment_intents", form("amount", s.stripeAmount(amt), "currency", cur,
			"confirm", "true", "payment_method", "pm_card_visa"), hdr...)))
	}},
	{"authorise with overcapture, then capture", func(s *capSeq) {
		amt := s.cents()
		r := s.do(stripePost("/v1/payment_intents", form("amount", itoa(amt), "currency", "usd", "confirm", "true",
			"payment_method", "pm_card_visa", "capture_method", "manual",
			"payment_method_options[card][request_overcapture]", "if_available"), s.maybeIdem(nil)...))
		pi := s.rememberIntent(r)
		if pi == "" {
			pi = s.anIntent()
		}
		body := ""
		if s.rng.IntN(4) > 0 {
			body = form("amount_to_capture", s.stripeAmount(max(amt*int64(50+s.rng.IntN(90))/100, 1)))
		}
		s.do(stripePost("/v1/payment_intents/"+pi+"/capture", body))
	}},
	{"create, switch currency or raise, confirm", func(s *capSeq) {
		r := s.do(stripePost("/v1/payment_intents", form("amount", itoa(s.cents()), "currency", "usd", "payment_method", "pm_card_visa")))
		pi := s.rememberIntent(r)
		if pi == "" {
			return
		}
		switch s.rng.IntN(3) {
		case 0:
			s.do(stripePost("/v1/payment_intents/"+pi, form("currency", []string{"gbp", "jpy"}[s.rng.IntN(2)])))
		case 1:
			s.do(stripePost("/v1/payment_intents/"+pi, form("amount", s.stripeAmount(s.cents()*2))))
		default:
			s.do(stripePost("/v1/payment_intents/"+pi, form("metadata[step]", "x")))
		}
		s.do(stripePost("/v1/payment_intents/"+pi+"/confirm", ""))
	}},
	{"replay the last request, honest or altered", func(s *capSeq) {
		if s.last == nil || s.last.method != http.MethodPost {
			return
		}
		req := *s.last
		req.header = req.header.Clone()
		if req.header.Get("Idempotency-Key") == "" {
			req.header.Set("Idempotency-Key", "idem"+strconv.Itoa(s.rng.IntN(4)))
		}
		switch s.rng.IntN(4) {
		case 0:
			req.body = form("amount", itoa(s.cents()*5), "currency", "usd", "confirm", "true", "payment_method", "pm_card_visa")
			req.path = "/v1/payment_intents"
		case 1:
			req.header.Set("Stripe-Account", "acct_"+strconv.Itoa(s.rng.IntN(3)))
		}
		s.do(req)
	}},
	{"GET with an idempotency key, then a charge with it", func(s *capSeq) {
		k := "idem" + strconv.Itoa(s.rng.IntN(4))
		s.do(stripeGet("/v1/customers/cus_x", "Idempotency-Key", k))
		s.rememberIntent(s.do(stripePost("/v1/payment_intents", form("amount", itoa(s.cents()*3), "currency", "usd",
			"confirm", "true", "payment_method", "pm_card_visa"), "Idempotency-Key", k)))
	}},
	{"see an intent with a GET, confirm it", func(s *capSeq) {
		pi := s.anIntent()
		s.do(stripeGet("/v1/payment_intents/" + pi))
		s.do(stripePost("/v1/payment_intents/"+pi+"/confirm", ""))
	}},
	{"refund", func(s *capSeq) {
		pi := s.anIntent()
		body := form("payment_intent", pi)
		if s.rng.IntN(2) == 0 {
			body = form("payment_intent", pi, "amount", s.stripeAmount(s.cents()))
		}
		s.do(stripePost("/v1/refunds", body))
	}},
	{"uncaptured charge, then capture", func(s *capSeq) {
		cur, amt := s.stripeCurrency()
		r := s.do(stripePost("/v1/charges", form("amount", s.stripeAmount(amt), "currency", cur, "source", "tok_visa", "capture", "false")))
		ch := jsonField(r.body, "id")
		if ch == "" {
			return
		}
		body := ""
		if s.rng.IntN(2) == 0 {
			body = form("amount", s.stripeAmount(s.cents()))
		}
		s.do(stripePost("/v1/charges/"+ch+"/capture", body))
	}},
	{"transfer or payout", func(s *capSeq) {
		path := []string{"/v1/transfers", "/v1/payouts"}[s.rng.IntN(2)]
		cur, amt := s.stripeCurrency()
		s.do(stripePost(path, form("amount", s.stripeAmount(amt), "currency", cur, "destination", "acct_A")))
	}},
	{"subscription, invoice or treasury", func(s *capSeq) {
		reqs := []capRequest{
			stripePost("/v1/subscriptions", form("customer", "cus_x", "items[0][price]", "price_x")),
			stripePost("/v1/invoices", form("customer", "cus_x", "auto_advance", "true")),
			stripePost("/v1/invoices/in_x/pay", ""),
			stripePost("/v1/treasury/outbound_payments", form("amount", itoa(s.cents()), "currency", "usd")),
		}
		r := s.do(reqs[s.rng.IntN(len(reqs))])
		if r.status != 403 {
			s.t.Errorf("a money-moving endpoint with no price rule answered %s", r)
		}
	}},
	{"free calls", func(s *capSeq) {
		s.do(stripePost("/v1/customers", form("email", "x@example.com")))
		s.do(stripeGet("/v1/payment_intents"))
	}},
}
