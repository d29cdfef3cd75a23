package simvendor

import (
	"net/http"
	"strings"
)

// Customers, Products and PaymentMethods: minimal create, retrieve, update,
// list and delete that move no money. A customer's "balance" (negative is
// credit) is kept because invoices draw on it. A PaymentMethod created from
// a token containing "chargeDeclined" declines when used; every other one
// succeeds.
func basicRoutes() []stripeRoute {
	cus := func(a *stripeAccount) *store[obj] { return &a.customers }
	prod := func(a *stripeAccount) *store[obj] { return &a.products }
	pm := func(a *stripeAccount) *store[obj] { return &a.paymentMeths }
	return []stripeRoute{
		route(http.MethodPost, "/v1/customers", crudCreate(cus, "cus", "customer", []string{"email", "name", "description"}, nil)),
		route(http.MethodGet, "/v1/customers", crudList(cus, "/v1/customers")),
		route(http.MethodGet, "/v1/customers/"+idPat, crudGet(cus, "customer")),
		route(http.MethodPost, "/v1/customers/"+idPat, crudUpdate(cus, "customer", []string{"email", "name", "description"})),
		route(http.MethodDelete, "/v1/customers/"+idPat, crudDelete(cus, "customer")),
		route(http.MethodPost, "/v1/products", crudCreate(prod, "prod", "product", []string{"name", "description"}, []string{"name"})),
		route(http.MethodGet, "/v1/products", crudList(prod, "/v1/products")),
		route(http.MethodGet, "/v1/products/"+idPat, crudGet(prod, "product")),
		route(http.MethodPost, "/v1/products/"+idPat, crudUpdate(prod, "product", []string{"name", "description"})),
		route(http.MethodDelete, "/v1/products/"+idPat, crudDelete(prod, "product")),
		route(http.MethodPost, "/v1/payment_methods", pmCreate),
		route(http.MethodGet, "/v1/payment_methods/"+idPat, crudGet(pm, "payment_method")),
		route(http.MethodPost, "/v1/payment_methods/"+idPat, crudUpdate(pm, "payment_method", nil)),
		route(http.MethodPost, "/v1/payment_methods/"+idPat+"/attach", pmAttach(true)),
		route(http.MethodPost, "/v1/payment_methods/"+idPat+"/detach", pmAttach(false)),
	}
}

type pickStore func(*stripeAccount) *store[obj]

func crudCreate(pick pickStore, prefix, object string, fields, required []string) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		for _, f := range required {
			if c.p.str(f) == "" {
				return nil, errMissing(f)
			}
		}
		o := obj{"id": c.s.stripeID(prefix), "object": object, "created": c.now.Unix(), "livemode": false,
			"metadata": mergeMetadata(nil, c.p)}
		for _, f := range fields {
			o[f] = nullable(c.p.str(f))
		}
		switch object {
		case "customer":
			o["balance"] = int64(0)
			o["invoice_settings"] = obj{"default_payment_method": nullable(c.p.str("invoice_settings[default_payment_method]"))}
		case "product":
			o["active"] = true
		}
		pick(c.acct).put(o["id"].(string), o)
		return o, nil
	}
}

func crudGet(pick pickStore, object string) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		if object == "payment_method" && strings.HasPrefix(c.m[1], "pm_card_") {
			return testPaymentMethod(c.m[1]), nil
		}
		o, ok := pick(c.acct).get(c.m[1])
		if !ok {
			return nil, errNoSuch(object, c.m[1], "id")
		}
		return public(o), nil
	}
}

func crudUpdate(pick pickStore, object string, fields []string) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		o, ok := pick(c.acct).get(c.m[1])
		if !ok {
			return nil, errNoSuch(object, c.m[1], "id")
		}
		for _, f := range fields {
			if c.p.has(f) {
				o[f] = nullable(c.p.str(f))
			}
		}
		if object == "customer" && c.p.has("invoice_settings[default_payment_method]") {
			o["invoice_settings"] = obj{"default_payment_method": nullable(c.p.str("invoice_settings[default_payment_method]"))}
		}
		o["metadata"] = mergeMetadata(asStrings(o["metadata"]), c.p)
		return public(o), nil
	}
}

func crudDelete(pick pickStore, object string) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		if _, ok := pick(c.acct).get(c.m[1]); !ok {
			return nil, errNoSuch(object, c.m[1], "id")
		}
		pick(c.acct).del(c.m[1])
		return obj{"id": c.m[1], "object": object, "deleted": true}, nil
	}
}

func crudList(pick pickStore, url string) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		var data []any
		for _, o := range pick(c.acct).newestFirst() {
			data = append(data, public(o))
		}
		return list(url, c.listLimit(data)), nil
	}
}

func asStrings(v any) map[string]string {
	m, _ := v.(map[string]string)
	return m
}

// public drops the simulator's private fields (those starting with "_").
func public(o obj) obj {
	out := obj{}
	for k, v := range o {
		if !strings.HasPrefix(k, "_") {
			out[k] = v
		}
	}
	return out
}

func testPaymentMethod(id string) obj {
	return obj{"id": id, "object": "payment_method", "type": "card", "customer": nil, "livemode": false,
		"card": obj{"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}, "metadata": map[string]string{}}
}

func pmCreate(c *stripeCall) (any, *stripeError) {
	if c.p.str("type") == "" {
		return nil, errMissing("type")
	}
	if c.p.str("type") != "card" {
		return nil, errInvalidParam("type", "The simulator only creates card PaymentMethods.")
	}
	tok := c.p.str("card[token]")
	o := testPaymentMethod(c.s.stripeID("pm"))
	o["metadata"] = mergeMetadata(nil, c.p)
	o["created"] = c.now.Unix()
	o["_declines"] = strings.Contains(tok, "chargeDeclined")
	c.acct.paymentMeths.put(o["id"].(string), o)
	return public(o), nil
}

func pmAttach(attach bool) func(c *stripeCall) (any, *stripeError) {
	return func(c *stripeCall) (any, *stripeError) {
		o, ok := c.acct.paymentMeths.get(c.m[1])
		if !ok {
			return nil, errNoSuch("PaymentMethod", c.m[1], "payment_method")
		}
		if !attach {
			o["customer"] = nil
			return public(o), nil
		}
		cus := c.p.str("customer")
		if cus == "" {
			return nil, errMissing("customer")
		}
		if _, ok := c.acct.customers.get(cus); !ok {
			return nil, errNoSuch("customer", cus, "customer")
		}
		o["customer"] = cus
		return public(o), nil
	}
}
