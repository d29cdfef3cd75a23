package simvendor

import (
	"math/big"
	"net/http"
	"strconv"
	"time"
)

// Prices and invoice items (https://docs.stripe.com/api/prices,
// https://docs.stripe.com/api/invoiceitems): they move nothing by
// themselves; an invoice that includes them does when it is paid.

type price struct {
	id            string
	unitAmount    int64
	currency      string
	recurring     bool
	interval      string
	intervalCount int64
	product       string
	metadata      map[string]string
	created       time.Time
}

func (p *price) render() obj {
	o := obj{"id": p.id, "object": "price", "unit_amount": p.unitAmount, "currency": p.currency,
		"product": p.product, "active": true, "livemode": false, "metadata": orEmpty(p.metadata),
		"created": p.created.Unix(), "type": "one_time", "recurring": nil, "billing_scheme": "per_unit"}
	if p.recurring {
		o["type"] = "recurring"
		o["recurring"] = obj{"interval": p.interval, "interval_count": p.intervalCount, "usage_type": "licensed"}
	}
	return o
}

// addInterval is the end of a billing period of n intervals starting at t.
func addInterval(t time.Time, interval string, n int64) time.Time {
	k := int(n)
	switch interval {
	case "day":
		return t.AddDate(0, 0, k)
	case "week":
		return t.AddDate(0, 0, 7*k)
	case "year":
		return t.AddDate(k, 0, 0)
	}
	return t.AddDate(0, k, 0)
}

// prorate is amount × part / whole, rounded to the nearest unit, computed
// without overflow.
func prorate(amount int64, part, whole time.Duration) int64 {
	if whole <= 0 {
		return 0
	}
	n := new(big.Int).Mul(big.NewInt(amount), big.NewInt(int64(part)))
	d := big.NewInt(int64(whole))
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(r), big.NewInt(2)).Cmp(d) >= 0 {
		if n.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}

func billingRoutes() []stripeRoute {
	return append(append([]stripeRoute{
		route(http.MethodPost, "/v1/prices", priceCreate),
		route(http.MethodGet, "/v1/prices/"+idPat, priceRetrieve),
		route(http.MethodPost, "/v1/invoiceitems", invoiceItemCreate),
		route(http.MethodGet, "/v1/invoiceitems/"+idPat, invoiceItemRetrieve),
	}, invoiceRoutes()...), subscriptionRoutes()...)
}

func priceCreate(c *stripeCall) (any, *stripeError) {
	cur, e := c.currencyParam("currency", true)
	if e != nil {
		return nil, e
	}
	unit, ok, e := c.p.int("unit_amount")
	if e != nil {
		return nil, e
	}
	if !ok {
		return nil, errMissing("unit_amount")
	}
	if unit < 0 || unit > 99_999_999 {
		return nil, errAmount("unit_amount", unit)
	}
	p := &price{id: c.s.stripeID("price"), unitAmount: unit, currency: cur, metadata: mergeMetadata(nil, c.p), created: c.now}
	switch {
	case c.p.str("product") != "":
		if _, ok := c.acct.products.get(c.p.str("product")); !ok {
			return nil, errNoSuch("product", c.p.str("product"), "product")
		}
		p.product = c.p.str("product")
	case c.p.str("product_data[name]") != "":
		prod := obj{"id": c.s.stripeID("prod"), "object": "product", "name": c.p.str("product_data[name]"),
			"active": true, "created": c.now.Unix(), "livemode": false, "metadata": map[string]string{}}
		c.acct.products.put(prod["id"].(string), prod)
		p.product = prod["id"].(string)
	default:
		return nil, errMissing("product")
	}
	if iv := c.p.str("recurring[interval]"); iv != "" {
		switch iv {
		case "day", "week", "month", "year":
		default:
			return nil, errInvalidParam("recurring[interval]", "Invalid recurring[interval]: must be one of day, week, month, or year")
		}
		n, ok, e := c.p.int("recurring[interval_count]")
		if e != nil {
			return nil, e
		}
		if !ok {
			n = 1
		}
		if n < 1 || n > 365 {
			return nil, errInvalidParam("recurring[interval_count]", "Invalid recurring[interval_count].")
		}
		p.recurring, p.interval, p.intervalCount = true, iv, n
	}
	c.acct.prices.put(p.id, p)
	return p.render(), nil
}

func priceRetrieve(c *stripeCall) (any, *stripeError) {
	p, ok := c.acct.prices.get(c.m[1])
	if !ok {
		return nil, errNoSuch("price", c.m[1], "price")
	}
	return p.render(), nil
}

type invoiceItem struct {
	id           string
	customer     string
	amount       int64
	unitAmount   int64
	quantity     int64
	currency     string
	price        string
	description  string
	invoice      string
	subscription string
	proration    bool
	created      time.Time
}

func (ii *invoiceItem) render() obj {
	return obj{"id": ii.id, "object": "invoiceitem", "amount": ii.amount, "currency": ii.currency,
		"customer": ii.customer, "description": nullable(ii.description), "invoice": nullable(ii.invoice),
		"subscription": nullable(ii.subscription), "proration": ii.proration, "quantity": ii.quantity,
		"unit_amount": ii.unitAmount, "price": nullable(ii.price), "livemode": false, "date": ii.created.Unix()}
}

func invoiceItemCreate(c *stripeCall) (any, *stripeError) {
	cus := c.p.str("customer")
	if cus == "" {
		return nil, errMissing("customer")
	}
	if _, ok := c.acct.customers.get(cus); !ok {
		return nil, errNoSuch("customer", cus, "customer")
	}
	ii := &invoiceItem{customer: cus, quantity: 1, description: c.p.str("description"), created: c.now}
	if q, ok, e := c.p.int("quantity"); e != nil {
		return nil, e
	} else if ok {
		if q < 0 || q > 1_000_000 {
			return nil, errInvalidParam("quantity", "Invalid quantity.")
		}
		ii.quantity = q
	}
	switch {
	case c.p.str("price") != "":
		p, ok := c.acct.prices.get(c.p.str("price"))
		if !ok {
			return nil, errNoSuch("price", c.p.str("price"), "price")
		}
		ii.price, ii.currency, ii.unitAmount = p.id, p.currency, p.unitAmount
		ii.amount = p.unitAmount * ii.quantity
	case c.p.has("amount") || c.p.has("unit_amount"):
		cur, e := c.currencyParam("currency", true)
		if e != nil {
			return nil, e
		}
		ii.currency = cur
		if c.p.has("amount") {
			n, _, e := c.p.int("amount")
			if e != nil {
				return nil, e
			}
			ii.amount, ii.unitAmount = n, n
		} else {
			n, _, e := c.p.int("unit_amount")
			if e != nil {
				return nil, e
			}
			ii.unitAmount, ii.amount = n, n*ii.quantity
		}
	default:
		return nil, errMissing("amount")
	}
	if ii.amount > 99_999_999 || ii.amount < -99_999_999 {
		return nil, errAmount("amount", ii.amount)
	}
	var inv *invoice
	if id := c.p.str("invoice"); id != "" {
		var ok bool
		if inv, ok = c.acct.invoices.get(id); !ok {
			return nil, errNoSuch("invoice", id, "invoice")
		}
		if inv.status != "draft" || inv.customer != cus || inv.currency != ii.currency {
			return nil, errState("invoice_not_editable", "invoice", "You can only add invoice items to a draft invoice of the same customer and currency.")
		}
	}
	ii.subscription = c.p.str("subscription")
	ii.id = c.s.stripeID("ii")
	c.acct.invoiceItems.put(ii.id, ii)
	if inv != nil {
		c.billing().attach(inv, ii)
	}
	return ii.render(), nil
}

func invoiceItemRetrieve(c *stripeCall) (any, *stripeError) {
	ii, ok := c.acct.invoiceItems.get(c.m[1])
	if !ok {
		return nil, errNoSuch("invoiceitem", c.m[1], "id")
	}
	return ii.render(), nil
}

// customerBalance reads and writes a customer's balance (negative: credit).
func (a *stripeAccount) customerBalance(cus string) int64 {
	if o, ok := a.customers.get(cus); ok {
		if b, ok := o["balance"].(int64); ok {
			return b
		}
	}
	return 0
}

func (a *stripeAccount) setCustomerBalance(cus string, b int64) {
	if o, ok := a.customers.get(cus); ok {
		o["balance"] = b
	}
}

func atoi64(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
