package simvendor

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// stripeAPIVersion is answered when a request names none.
const stripeAPIVersion = "2025-06-30.basil"

// stripeState is every Stripe account's objects; the platform is "".
type stripeState struct {
	accounts map[string]*stripeAccount
}

func newStripeState() *stripeState { return &stripeState{accounts: map[string]*stripeAccount{}} }

// stripeAccount holds one account's objects. A Stripe-Account header
// scopes objects: an object of one account is "No such …" in another.
type stripeAccount struct {
	id           string
	intents      store[*paymentIntent]
	charges      store[*charge]
	refunds      store[obj]
	customers    store[obj]
	products     store[obj]
	paymentMeths store[obj]
	prices       store[*price]
	subs         store[*subscription]
	invoices     store[*invoice]
	invoiceItems store[*invoiceItem]
	transfers    store[obj]
	payouts      store[obj]
	treasury     store[obj]
	cards        store[obj]
}

func (st *stripeState) account(id string) *stripeAccount {
	a, ok := st.accounts[id]
	if !ok {
		a = &stripeAccount{id: id}
		st.accounts[id] = a
	}
	return a
}

// obj is a simple Stripe object kept as its JSON fields.
type obj map[string]any

// store keeps objects by id in creation order.
type store[T any] struct {
	m     map[string]T
	order []string
}

func (s *store[T]) get(id string) (T, bool) {
	v, ok := s.m[id]
	return v, ok
}

func (s *store[T]) put(id string, v T) {
	if s.m == nil {
		s.m = map[string]T{}
	}
	if _, ok := s.m[id]; !ok {
		s.order = append(s.order, id)
	}
	s.m[id] = v
}

func (s *store[T]) del(id string) { delete(s.m, id) }

// newestFirst lists the objects the way Stripe's list endpoints do.
func (s *store[T]) newestFirst() []T {
	out := make([]T, 0, len(s.m))
	for i := len(s.order) - 1; i >= 0; i-- {
		if v, ok := s.m[s.order[i]]; ok {
			out = append(out, v)
		}
	}
	return out
}

// stripeCall is one request being executed.
type stripeCall struct {
	s       *Sim
	acct    *stripeAccount
	account string
	method  string
	path    string
	p       params
	m       []string // path captures
	now     time.Time
}

type stripeRoute struct {
	method string
	re     *regexp.Regexp
	fn     func(c *stripeCall) (any, *stripeError)
}

func route(method, pattern string, fn func(c *stripeCall) (any, *stripeError)) stripeRoute {
	return stripeRoute{method: method, re: regexp.MustCompile("^" + pattern + "$"), fn: fn}
}

const idPat = `([A-Za-z0-9_]+)`

// stripeRoutes is every endpoint the simulator answers. Anything else is
// "Unrecognized request URL" and is noted in Problems.
var stripeRoutes []stripeRoute

func init() {
	stripeRoutes = append(stripeRoutes, paymentIntentRoutes()...)
	stripeRoutes = append(stripeRoutes, chargeRoutes()...)
	stripeRoutes = append(stripeRoutes, moveRoutes()...)
	stripeRoutes = append(stripeRoutes, basicRoutes()...)
	stripeRoutes = append(stripeRoutes, billingRoutes()...)
}

// Stripe returns the simulated api.stripe.com: form-encoded /v1 requests
// authenticated with Config.StripeSecretKey.
func (s *Sim) Stripe() http.Handler { return http.HandlerFunc(s.serveStripe) }

func (s *Sim) serveStripe(w http.ResponseWriter, r *http.Request) {
	body := s.receive(VendorStripe, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.stripeAdvance(now)
	reqID := s.stripeID("req")
	hdr := http.Header{}
	hdr.Set("Request-Id", reqID)
	v := r.Header.Get("Stripe-Version")
	if v == "" {
		v = stripeAPIVersion
	}
	hdr.Set("Stripe-Version", v)

	if e := s.stripeAuth(r); e != nil {
		writeStripe(w, hdr, e.status, e.body())
		return
	}
	var p url.Values
	if r.Method == http.MethodPost {
		var err error
		if p, err = url.ParseQuery(string(body)); err != nil {
			e := invalidRequest(http.StatusBadRequest, "", "", "Invalid request: unable to parse the form-encoded body.")
			writeStripe(w, hdr, e.status, e.body())
			return
		}
	} else {
		p = r.URL.Query()
	}
	c := &stripeCall{s: s, account: r.Header.Get("Stripe-Account"), method: r.Method, path: r.URL.Path, p: params(p), now: now}
	c.acct = s.stripe.account(c.account)
	rt := matchStripe(c)
	if rt == nil {
		s.problem("stripe: unsimulated endpoint " + r.Method + " " + r.URL.Path)
		e := errUnrecognized(r.Method, r.URL.Path)
		writeStripe(w, hdr, e.status, e.body())
		return
	}

	key, hasKey := r.Header.Get("Idempotency-Key"), r.Header.Get("Idempotency-Key") != ""
	if r.Method != http.MethodPost || !hasKey {
		// GET and DELETE ignore Idempotency-Key: "Don't send idempotency
		// keys in GET and DELETE requests because it has no effect."
		s.beforeExecute(VendorStripe, r)
		status, out, _ := c.exec(rt)
		writeStripe(w, hdr, status, out)
		return
	}
	if len(key) > 255 {
		e := errIdemKeyTooLong()
		writeStripe(w, hdr, e.status, e.body())
		return
	}
	hdr.Set("Idempotency-Key", key)
	scope := idemScope{vendor: VendorStripe, account: c.account, key: key}
	if e := s.idem.lookup(scope, now); e != nil {
		var se *stripeError
		switch {
		case e.inFlight:
			se = errIdemInFlight(key)
		case e.path != c.path:
			se = errIdemEndpoint(key, e.path, c.path)
		case e.fingerprint != c.p.fingerprint():
			se = errIdemParams(key)
		}
		if se != nil {
			writeStripe(w, hdr, se.status, se.body())
			return
		}
		hdr.Set("Idempotent-Replayed", "true")
		hdr.Set("Original-Request", e.requestID)
		writeRaw(w, hdr, e.status, e.body)
		return
	}
	s.idem.begin(scope, c.path, c.p.fingerprint(), now)
	s.beforeExecute(VendorStripe, r)
	status, out, saved := c.exec(rt)
	raw, _ := json.Marshal(out)
	if saved {
		s.idem.save(scope, reqID, status, hdr, raw)
	} else {
		s.idem.drop(scope)
	}
	writeRaw(w, hdr, status, raw)
}

func matchStripe(c *stripeCall) *stripeRoute {
	for i := range stripeRoutes {
		rt := &stripeRoutes[i]
		if rt.method != c.method {
			continue
		}
		if m := rt.re.FindStringSubmatch(c.path); m != nil {
			c.m = m
			return rt
		}
	}
	return nil
}

// exec runs the endpoint; saved says whether an idempotency key keeps the
// result (every success, and errors raised once execution began).
func (c *stripeCall) exec(rt *stripeRoute) (status int, out any, saved bool) {
	c.now = c.s.now()
	res, e := rt.fn(c)
	if e != nil {
		if e.status == http.StatusInternalServerError {
			c.s.problem("stripe: " + e.message)
		}
		return e.status, e.body(), e.saved
	}
	return http.StatusOK, res, true
}

// stripeAuth accepts the secret key as Bearer, or as the Basic user name
// (https://docs.stripe.com/api/authentication).
func (s *Sim) stripeAuth(r *http.Request) *stripeError {
	h := r.Header.Get("Authorization")
	var key string
	switch {
	case strings.HasPrefix(h, "Bearer "):
		key = strings.TrimPrefix(h, "Bearer ")
	case strings.HasPrefix(h, "Basic "):
		dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		if err == nil {
			key, _, _ = strings.Cut(string(dec), ":")
		}
	}
	if key == "" {
		return errNoKey()
	}
	if s.cfg.StripeSecretKey == "" || key != s.cfg.StripeSecretKey {
		return errInvalidKey(key)
	}
	return nil
}

func writeStripe(w http.ResponseWriter, hdr http.Header, status int, v any) {
	raw, _ := json.Marshal(v)
	writeRaw(w, hdr, status, raw)
}

func writeRaw(w http.ResponseWriter, hdr http.Header, status int, raw []byte) {
	for k, vs := range hdr {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

// list renders a Stripe list object.
func list(url string, data []any) obj {
	if data == nil {
		data = []any{}
	}
	return obj{"object": "list", "data": data, "has_more": false, "url": url}
}

// listLimit applies ?limit= (default 10, as Stripe).
func (c *stripeCall) listLimit(data []any) []any {
	n, ok, _ := c.p.int("limit")
	if !ok || n <= 0 {
		n = 10
	}
	if int64(len(data)) > n {
		data = data[:n]
	}
	return data
}

// micros converts an amount, or answers the 500 that says the simulator
// lacks a rate.
func (c *stripeCall) micros(amount int64, currency string) (int64, *stripeError) {
	m, err := c.s.toMicros(amount, currency)
	if err != nil {
		return 0, errNoRate(currency)
	}
	return m, nil
}

// record logs a Stripe money event for this call's account.
func (c *stripeCall) record(kind Kind, object string, micros, amount int64, currency, note string) {
	c.s.record(Event{Vendor: VendorStripe, Account: c.account, Object: object, Kind: kind,
		Micros: micros, Amount: amount, Unit: currency, Note: note})
}

// amountParam reads a required (or optional) amount in Stripe's bounds: a
// positive integer of at most eight digits (Stripe's "amount_too_large" is
// at $999,999.99 for USD). Stripe's per-currency minimum charge amounts
// ($0.50) are not enforced: the simulator accepts more, never less.
func (c *stripeCall) amountParam(name string, required bool) (int64, bool, *stripeError) {
	n, ok, e := c.p.int(name)
	if e != nil {
		return 0, false, e
	}
	if !ok {
		if required {
			return 0, false, errMissing(name)
		}
		return 0, false, nil
	}
	if n < 1 || n > 99_999_999 {
		return 0, false, errAmount(name, n)
	}
	return n, true, nil
}

// currencyParam reads a required currency: three letters, lower-cased.
func (c *stripeCall) currencyParam(name string, required bool) (string, *stripeError) {
	cur := strings.ToLower(c.p.str(name))
	if cur == "" {
		if required {
			return "", errMissing(name)
		}
		return "", nil
	}
	if len(cur) != 3 {
		return "", errInvalidParam(name, "Invalid currency: %s.", cur)
	}
	if _, ok := c.s.rate(cur); !ok {
		return "", errNoRate(cur)
	}
	return cur, nil
}
