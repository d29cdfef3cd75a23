package stripe

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Estimate implements vendors.Vendor: every call is priced from what the
// request says (and, for an object that already exists, from the object as
// Stripe has it), free because Stripe documents it moves no money, or of
// unknown cost.
func (v *Vendor) Estimate(r *http.Request, body []byte) (vendors.Estimate, error) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/v2/") && r.Method != http.MethodGet {
		return vendors.Estimate{Reason: "Stripe v2 writes are not priced by Keybrake"}, nil
	}
	for _, h := range scopeHeaders {
		// Stripe reads one account per request; the lookups that price a
		// call read one too. Two would let them read different ones.
		if len(r.Header.Values(h)) > 1 {
			return vendors.Estimate{}, badParam("keybrake_duplicate_header", "The header "+h+" is given more than once.")
		}
	}
	if err := checkMetadata(r, path, body); err != nil {
		return vendors.Estimate{}, err
	}
	kind := classify(r.Method, path)
	switch kind {
	case free:
		return vendors.Estimate{Known: true}, nil
	case unlisted:
		return vendors.Estimate{Reason: r.Method + " " + text.Truncate(path, 120) + " may move money and has no price rule"}, nil
	}
	form, err := parseForm(r, body)
	if err != nil {
		return vendors.Estimate{}, err
	}
	switch kind {
	case amountCurrency:
		return v.estimateCreate(form)
	case refund:
		return v.estimateRefund(r, form)
	default:
		return v.estimateOnObject(r, kind, form)
	}
}

// estimateCreate prices a create that names its amount and currency.
func (v *Vendor) estimateCreate(form url.Values) (vendors.Estimate, error) {
	amount, currency, err := amountAndCurrency(form, "amount")
	if err != nil {
		return vendors.Estimate{}, err
	}
	if amount == nil {
		return vendors.Estimate{}, badParam("parameter_missing", "Missing required param: amount.")
	}
	if currency == "" {
		return vendors.Estimate{}, badParam("parameter_missing", "Missing required param: currency.")
	}
	cost, err := v.toUSD(*amount, currency)
	if err != nil {
		return vendors.Estimate{}, err
	}
	return vendors.Estimate{Cost: cost, Known: true, Subjects: subjects(formCustomer(form), currency)}, nil
}

// estimateRefund prices a refund at its amount; without one Stripe refunds
// all that remains, which is read from the charge or intent at Stripe.
func (v *Vendor) estimateRefund(r *http.Request, form url.Values) (vendors.Estimate, error) {
	amount, currency, err := amountAndCurrency(form, "amount")
	if err != nil {
		return vendors.Estimate{}, err
	}
	collection, id := "charges", ""
	if p := segs(r.URL.Path); len(p) >= 3 && p[1] == "charges" {
		id = p[2]
	} else if ch, err := single(form, "charge"); err != nil {
		return vendors.Estimate{}, err
	} else if ch != "" {
		id = ch
	} else if pi, err := single(form, "payment_intent"); err != nil {
		return vendors.Estimate{}, err
	} else if pi != "" {
		collection, id = "payment_intents", pi
	}
	if id == "" {
		// A refund of no charge (a customer's cash balance) is priced in
		// the currency it names.
		if amount == nil || currency == "" {
			return vendors.Estimate{Reason: "a refund names no charge or payment intent whose currency Keybrake can read"}, nil
		}
		cost, err := v.toUSD(*amount, currency)
		if err != nil {
			return vendors.Estimate{}, err
		}
		return vendors.Estimate{Cost: cost, Known: true, Subjects: subjects(formCustomer(form), currency)}, nil
	}
	// The charge's currency, never the request's: Stripe refunds a charge
	// in its own currency.
	obj, err := v.lookup(r.Context(), r, collection, id)
	if err != nil {
		return vendors.Estimate{Reason: err.Error()}, nil
	}
	refunded := obj.AmountReceived // an intent: at most all it received
	if collection == "charges" {
		refunded = obj.AmountCaptured - obj.AmountRefunded
	}
	if amount != nil {
		refunded = *amount
	}
	cost, err := v.toUSD(max(refunded, 0), obj.Currency)
	if err != nil {
		return vendors.Estimate{}, err
	}
	// The customer refunded is the charge's, whatever the request says.
	return vendors.Estimate{Cost: cost, Known: true, Subjects: subjects(obj.customerID(), obj.Currency)}, nil
}

// estimateOnObject prices a call on a PaymentIntent or Charge that exists
// already: the most the object can have moved once the call is done
// (Exposure), from the request's own parameters and the object as Stripe
// has it. The gate reserves that less what the key counted for the object,
// so a currency switch, an amount raised by an update, a capture above the
// authorisation or a confirm of an intent created elsewhere is priced,
// while a confirm of an intent the key created and paid for costs nothing
// more.
func (v *Vendor) estimateOnObject(r *http.Request, kind pricing, form url.Values) (vendors.Estimate, error) {
	id := segs(r.URL.Path)[2]
	amountField := "amount"
	switch kind {
	case intentCapture:
		amountField = "amount_to_capture"
	}
	amount, currency, err := amountAndCurrency(form, amountField)
	if err != nil {
		return vendors.Estimate{}, err
	}
	if kind == intentUpdate && amount == nil && currency == "" {
		// An update that changes neither amount nor currency moves no
		// money: metadata, description, payment method, capture method.
		return vendors.Estimate{Known: true}, nil
	}
	if kind == intentIncrement && amount == nil {
		return vendors.Estimate{}, badParam("parameter_missing", "Missing required param: amount.")
	}
	collection := "payment_intents"
	if kind == chargeCapture {
		collection = "charges"
	}
	obj, err := v.lookup(r.Context(), r, collection, id)
	if err != nil {
		return vendors.Estimate{Reason: err.Error(), Object: id}, nil
	}
	if currency == "" || kind != intentUpdate {
		// Only an update may change the currency; elsewhere a currency
		// parameter is not Stripe's and the object's currency holds.
		currency = obj.Currency
	}
	var exposure int64
	switch kind {
	case intentUpdate, intentIncrement:
		exposure = *obj.Amount
		if amount != nil {
			exposure = *amount
		}
	case intentConfirm:
		exposure = *obj.Amount
	case intentCapture:
		capturing := obj.AmountCapturable
		if amount != nil {
			capturing = *amount
		}
		exposure = max(obj.AmountReceived+capturing, *obj.Amount)
	case chargeCapture:
		exposure = *obj.Amount
		if amount != nil {
			exposure = max(*amount, exposure)
		}
	}
	usd, err := v.toUSD(exposure, currency)
	if err != nil {
		return vendors.Estimate{}, err
	}
	customer := obj.customerID()
	if c := formCustomer(form); c != "" && kind == intentUpdate {
		// An update may move the intent to another customer: the one it
		// will charge is the request's.
		customer = c
	}
	return vendors.Estimate{Known: true, Object: id, Exposure: usd, Subjects: subjects(customer, currency)}, nil
}

// amountAndCurrency reads an amount field (nil when absent) and the
// currency ("" when absent), each given at most once.
func amountAndCurrency(form url.Values, amountField string) (*int64, string, error) {
	s, err := single(form, amountField)
	if err != nil {
		return nil, "", err
	}
	currency, err := single(form, "currency")
	if err != nil {
		return nil, "", err
	}
	if s == "" {
		return nil, currency, nil
	}
	amount, err := strconv.ParseInt(s, 10, 64)
	if err != nil || amount < 0 {
		return nil, "", badParam("parameter_invalid_integer", "Invalid integer: "+text.Truncate(s, 40))
	}
	return &amount, currency, nil
}

// toUSD prices an amount in a currency's minor units, refusing a currency
// with no configured rate.
func (v *Vendor) toUSD(amount int64, currency string) (money.Micros, error) {
	cost, err := v.rates.ToUSD(amount, currency)
	if errors.Is(err, money.ErrInvalidAmount) {
		// An amount no rate can price (past what a cap can hold): Stripe
		// itself refuses amounts of more than eight digits with this code.
		return 0, badParam("amount_too_large", "Amount must be no more than the largest amount Keybrake can price; got "+
			text.Truncate(strconv.FormatInt(amount, 10), 20)+" in "+strings.ToUpper(text.Truncate(currency, 10))+".")
	}
	if err != nil {
		return 0, badParam("keybrake_currency_not_priced",
			fmt.Sprintf("Keybrake cannot price %s: %v. Configure a rate for it in the stripe vendor block.", strings.ToUpper(text.Truncate(currency, 10)), err))
	}
	return cost, nil
}

// parseForm reads Stripe's form-encoded parameters from the body (POST) or
// the query string (GET). One reading only (vendors/reading.go): a JSON
// body, a write with a query string, and a parameter given twice (single)
// are refused: Keybrake must price exactly what Stripe will read.
func parseForm(r *http.Request, body []byte) (url.Values, error) {
	form := url.Values{}
	if len(body) > 0 {
		ct := r.Header.Get("Content-Type")
		if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
			return nil, badParam("keybrake_unsupported_content_type", "Keybrake prices Stripe v1 requests sent as application/x-www-form-urlencoded only.")
		}
		if vendors.LooksLikeJSON(body) {
			return nil, vendors.Ambiguous("Stripe v1 reads form encoding; this body is JSON. Send it as application/x-www-form-urlencoded.")
		}
		var err error
		form, err = url.ParseQuery(string(body))
		if err != nil {
			return nil, badParam("keybrake_malformed_body", "The request body is not valid form encoding.")
		}
	}
	if r.Method == http.MethodPost && r.URL.RawQuery != "" {
		// The SDKs send a write's parameters in its body; one in the query
		// string could be read there by Stripe and not here, or the
		// other way round.
		return nil, vendors.Ambiguous("Keybrake reads the parameters of a Stripe " + r.Method + " from its form body only; move them out of the query string.")
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badParam("keybrake_malformed_query", "The query string is not valid form encoding.")
	}
	for k, vs := range query {
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
