package simvendor

import (
	"fmt"
	"net/http"
)

// stripeError is an error in Stripe's shape
// (https://docs.stripe.com/api/errors): {"error":{"type","code","message",
// "param",…}}.
type stripeError struct {
	status  int
	typ     string
	code    string
	message string
	param   string
	extra   map[string]any
	// saved: the endpoint had started executing, so Stripe's idempotency
	// layer keeps this response. Validation failures are not saved ("If
	// incoming parameters fail validation … we don't save the idempotent
	// result", https://docs.stripe.com/api/idempotent_requests).
	saved bool
}

func (e *stripeError) body() map[string]any {
	m := map[string]any{"type": e.typ, "message": e.message}
	if e.code != "" {
		m["code"] = e.code
		m["doc_url"] = "https://stripe.com/docs/error-codes/" + hyphens(e.code)
	}
	if e.param != "" {
		m["param"] = e.param
	}
	for k, v := range e.extra {
		m[k] = v
	}
	return map[string]any{"error": m}
}

func hyphens(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}

func invalidRequest(status int, code, param, format string, args ...any) *stripeError {
	return &stripeError{status: status, typ: "invalid_request_error", code: code, param: param, message: fmt.Sprintf(format, args...)}
}

// errInvalidKey is Stripe's answer to a wrong secret key: 401, type
// invalid_request_error, the key shown with its middle masked.
func errInvalidKey(key string) *stripeError {
	shown := key
	if len(key) > 12 {
		shown = key[:8] + "****" + key[len(key)-4:]
	}
	return invalidRequest(http.StatusUnauthorized, "", "", "Invalid API Key provided: %s", shown)
}

func errNoKey() *stripeError {
	return invalidRequest(http.StatusUnauthorized, "", "",
		"You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.")
}

func errMissing(param string) *stripeError {
	return invalidRequest(http.StatusBadRequest, "parameter_missing", param, "Missing required param: %s.", param)
}

func errInvalidInteger(param, v string) *stripeError {
	return invalidRequest(http.StatusBadRequest, "parameter_invalid_integer", param, "Invalid integer: %s", v)
}

func errInvalidBoolean(param, v string) *stripeError {
	return invalidRequest(http.StatusBadRequest, "parameter_invalid_boolean", param, "Invalid boolean: %s", v)
}

func errInvalidParam(param, format string, args ...any) *stripeError {
	return invalidRequest(http.StatusBadRequest, "parameter_invalid_empty", param, format, args...)
}

func errNoSuch(kind, id, param string) *stripeError {
	return invalidRequest(http.StatusNotFound, "resource_missing", param, "No such %s: '%s'", kind, id)
}

func errUnrecognized(method, path string) *stripeError {
	return invalidRequest(http.StatusNotFound, "", "",
		"Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.", method, path)
}

// errState is an error the endpoint found while executing (the object's
// state forbids the action); it is saved under an idempotency key.
func errState(code, param, format string, args ...any) *stripeError {
	e := invalidRequest(http.StatusBadRequest, code, param, format, args...)
	e.saved = true
	return e
}

func errAmount(param string, amount int64) *stripeError {
	if amount < 1 {
		return invalidRequest(http.StatusBadRequest, "amount_too_small", param, "This value must be greater than or equal to 1.")
	}
	return invalidRequest(http.StatusBadRequest, "amount_too_large", param, "Amount must be no more than 99999999 (in the smallest currency unit).")
}

func errIdemParams(key string) *stripeError {
	return &stripeError{status: http.StatusBadRequest, typ: "idempotency_error", message: fmt.Sprintf(
		"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key)}
}

func errIdemEndpoint(key, first, now string) *stripeError {
	return &stripeError{status: http.StatusBadRequest, typ: "idempotency_error", message: fmt.Sprintf(
		"Keys for idempotent requests can only be used for the same endpoint they were first used for ('%s' vs '%s'). Try using a key other than '%s' if you meant to execute a different request.", first, now, key)}
}

func errIdemInFlight(key string) *stripeError {
	return invalidRequest(http.StatusConflict, "", "",
		"There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): %s. Please try again later.", key)
}

func errIdemKeyTooLong() *stripeError {
	return invalidRequest(http.StatusBadRequest, "", "", "Idempotency keys may be at most 255 characters long.")
}

// errCardDeclined is the 402 of a declined test card
// (https://docs.stripe.com/testing#declined-payments).
func errCardDeclined(extra map[string]any) *stripeError {
	return &stripeError{status: http.StatusPaymentRequired, typ: "card_error", code: "card_declined",
		message: "Your card was declined.", extra: mergeMaps(map[string]any{"decline_code": "generic_decline"}, extra), saved: true}
}

func errNoRate(currency string) *stripeError {
	return &stripeError{status: http.StatusInternalServerError, typ: "api_error",
		message: fmt.Sprintf("simvendor: no USD rate configured for currency %q; set Config.Rates", currency)}
}

func mergeMaps(a, b map[string]any) map[string]any {
	for k, v := range b {
		a[k] = v
	}
	return a
}
