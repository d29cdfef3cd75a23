package stripe

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keybrake/keybrake/vendors"
)

// pricing says how an endpoint's cost is told.
type pricing int

const (
	free           pricing = iota // moves no money
	amountCurrency                // the request's amount in its currency
	seenIntent                    // counted when its PaymentIntent was created
	unknownCost                   // moves money Keybrake cannot tell from the request
)

// rule prices one money-moving endpoint. Path segments "*" match one segment.
type rule struct {
	method  string
	path    []string
	pricing pricing
	// amountField is the form field holding the amount (default "amount").
	amountField string
	// optionalAmount: a missing amount means "all of it", which the
	// request cannot tell (a full refund): unknown cost.
	optionalAmount bool
}

// rules lists every money-moving endpoint of Stripe's v1 API that Keybrake
// prices. Any other v1 call moves no money by itself; any v2 write is of
// unknown cost (fail closed: v2 money movement is priced in JSON bodies
// Keybrake does not read yet).
var rules = []rule{
	{method: "POST", path: segs("/v1/payment_intents"), pricing: amountCurrency},
	{method: "POST", path: segs("/v1/payment_intents/*"), pricing: amountCurrency, optionalAmount: true},
	{method: "POST", path: segs("/v1/payment_intents/*/confirm"), pricing: seenIntent},
	{method: "POST", path: segs("/v1/payment_intents/*/capture"), pricing: seenIntent},
	{method: "POST", path: segs("/v1/payment_intents/*/increment_authorization"), pricing: unknownCost},
	{method: "POST", path: segs("/v1/charges"), pricing: amountCurrency},
	{method: "POST", path: segs("/v1/charges/*/capture"), pricing: seenIntent},
	{method: "POST", path: segs("/v1/refunds"), pricing: amountCurrency, optionalAmount: true},
	{method: "POST", path: segs("/v1/charges/*/refunds"), pricing: amountCurrency, optionalAmount: true},
	{method: "POST", path: segs("/v1/transfers"), pricing: amountCurrency},
	{method: "POST", path: segs("/v1/payouts"), pricing: amountCurrency},
	{method: "POST", path: segs("/v1/topups"), pricing: amountCurrency},
	{method: "POST", path: segs("/v1/invoices/*/pay"), pricing: unknownCost},
	{method: "POST", path: segs("/v1/subscriptions"), pricing: unknownCost},
	{method: "POST", path: segs("/v1/customers/*/subscriptions"), pricing: unknownCost},
}

func segs(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

func (r *rule) matches(method string, path []string) bool {
	if r.method != method || len(r.path) != len(path) {
		return false
	}
	for i, s := range r.path {
		if s != "*" && s != path[i] {
			return false
		}
	}
	return true
}

func findRule(method, path string) *rule {
	p := segs(path)
	for i := range rules {
		if rules[i].matches(method, p) {
			return &rules[i]
		}
	}
	return nil
}

// Estimate implements vendors.Vendor.
func (v *Vendor) Estimate(r *http.Request, body []byte) (vendors.Estimate, error) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/v2/") && r.Method != http.MethodGet {
		return vendors.Estimate{Reason: "Stripe v2 writes are not priced by Keybrake"}, nil
	}
	rl := findRule(r.Method, path)
	if rl == nil {
		return vendors.Estimate{Known: true}, nil
	}
	switch rl.pricing {
	case seenIntent:
		// /v1/payment_intents/{id}/confirm: the id is the third segment.
		return vendors.Estimate{SeenTxn: segs(path)[2], Reason: "the amount of " + segs(path)[2] + " was not seen by Keybrake"}, nil
	case unknownCost:
		return vendors.Estimate{Reason: "the cost of " + r.Method + " " + path + " cannot be told from the request"}, nil
	}
	form, err := parseForm(r, body)
	if err != nil {
		return vendors.Estimate{}, err
	}
	amountField := rl.amountField
	if amountField == "" {
		amountField = "amount"
	}
	amountStr, err := single(form, amountField)
	if err != nil {
		return vendors.Estimate{}, err
	}
	if amountStr == "" {
		if rl.optionalAmount && rl.path[len(rl.path)-1] == "*" {
			// An update that does not change the amount moves no money.
			return vendors.Estimate{Known: true}, nil
		}
		if rl.optionalAmount {
			return vendors.Estimate{Reason: "a refund without an amount refunds an amount Keybrake cannot tell"}, nil
		}
		return vendors.Estimate{}, badParam("parameter_missing", "Missing required param: "+amountField+".")
	}
	amount, err := strconv.ParseInt(amountStr, 10, 64)
	if err != nil || amount < 0 {
		return vendors.Estimate{}, badParam("parameter_invalid_integer", "Invalid integer: "+amountStr)
	}
	currency, err := single(form, "currency")
	if err != nil {
		return vendors.Estimate{}, err
	}
	if currency == "" {
		if rl.optionalAmount {
			// A refund's (or an update's) currency is its object's;
			// without it the amount cannot be priced.
			return vendors.Estimate{Reason: "an amount without a currency cannot be priced"}, nil
		}
		return vendors.Estimate{}, badParam("parameter_missing", "Missing required param: currency.")
	}
	cost, err := v.rates.ToUSD(amount, currency)
	if err != nil {
		return vendors.Estimate{}, badParam("keybrake_currency_not_priced",
			fmt.Sprintf("Keybrake cannot price %s: %v. Configure a rate for it in the stripe vendor block.", strings.ToUpper(currency), err))
	}
	return vendors.Estimate{Cost: cost, Known: true}, nil
}

// parseForm reads Stripe's form-encoded parameters from the body (POST) and
// the query string. A parameter given twice in different places is refused:
// Keybrake must price exactly what Stripe will read.
func parseForm(r *http.Request, body []byte) (url.Values, error) {
	form := url.Values{}
	if len(body) > 0 {
		ct := r.Header.Get("Content-Type")
		if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
			return nil, badParam("keybrake_unsupported_content_type", "Keybrake prices Stripe v1 requests sent as application/x-www-form-urlencoded only.")
		}
		var err error
		form, err = url.ParseQuery(string(body))
		if err != nil {
			return nil, badParam("keybrake_malformed_body", "The request body is not valid form encoding.")
		}
	}
	for k, vs := range r.URL.Query() {
		form[k] = append(form[k], vs...)
	}
	return form, nil
}

// single returns a parameter that must appear at most once.
func single(form url.Values, name string) (string, error) {
	vs := form[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(vs[0]), nil
	default:
		return "", badParam("keybrake_duplicate_param", "The parameter "+name+" is given more than once.")
	}
}

// badParam is a 400 refusal of a request parameter; msg names the parameter.
func badParam(code, msg string) *vendors.Error {
	return &vendors.Error{Status: http.StatusBadRequest, Code: code, Message: msg}
}
