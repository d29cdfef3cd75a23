package vendors

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error formats (a declared vendor's error_format; each built-in vendor
// uses its own): the body Keybrake answers its own refusals with, shaped
// like the vendor's so its SDK surfaces them.
const (
	// FormatJSON is {"error":{"code":"keybrake_cap_hit","message":"…"}},
	// with "x-should-retry: false" on refusals a retry cannot fix (the
	// OpenAI and Anthropic SDKs obey it).
	FormatJSON = "json"
	// FormatStripe is {"error":{"type","code","message"}} with
	// Stripe-Should-Retry: false.
	FormatStripe = "stripe"
	// FormatTwilio is {"code":20429,"message","more_info","status"}.
	FormatTwilio = "twilio"
	// FormatResend is {"statusCode":429,"name":"…","message":"…"}.
	FormatResend = "resend"
)

// ValidFormat reports whether f is one of the error formats above.
func ValidFormat(f string) bool {
	switch f {
	case FormatJSON, FormatStripe, FormatTwilio, FormatResend:
		return true
	}
	return false
}

// WriteError writes a refusal in one of the formats above (FormatJSON for
// an unknown one).
func WriteError(format string, w http.ResponseWriter, e *Error) {
	switch format {
	case FormatStripe:
		WriteStripeError(w, e)
	case FormatTwilio:
		WriteTwilioError(w, e)
	case FormatResend:
		WriteResendError(w, e)
	default:
		WriteJSONError(w, e)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSONError writes {"error":{"code","message"}}.
func WriteJSONError(w http.ResponseWriter, e *Error) {
	switch {
	case e.NothingSent, e.RetryAfter > 0:
		w.Header().Set("X-Should-Retry", "true")
	case !e.Retryable:
		w.Header().Set("X-Should-Retry", "false")
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

// WriteStripeError writes Stripe's error envelope: stripe-go retries a body
// it cannot parse, and obeys Stripe-Should-Retry before anything else.
func WriteStripeError(w http.ResponseWriter, e *Error) {
	typ := "invalid_request_error"
	switch {
	case e.Type != "":
		typ = e.Type
	case e.Status >= 500:
		typ = "api_error"
	}
	switch {
	case e.NothingSent, e.RetryAfter > 0:
		w.Header().Set("Stripe-Should-Retry", "true")
	case !e.Retryable:
		w.Header().Set("Stripe-Should-Retry", "false")
	}
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"type": typ, "code": e.Code, "message": e.Message}})
}

// TwilioError is Twilio's REST error body, as twilio-go decodes it.
type TwilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// TwilioCode is the Twilio error code Keybrake answers with for an HTTP
// status: 20003 authentication, 20403 forbidden, 20404 not found, 20429 too
// many requests (a cap hit), 20500/20503 server side, 20422 (invalid
// parameter) any other refusal of the request.
func TwilioCode(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return 20003
	case http.StatusForbidden:
		return 20403
	case http.StatusNotFound:
		return 20404
	case http.StatusMethodNotAllowed:
		return 20004
	case http.StatusTooManyRequests:
		return 20429
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return 20503
	}
	if status >= 500 {
		return 20500
	}
	return 20422
}

// WriteTwilioError writes {"code":20429,"message":"…","more_info":
// "https://www.twilio.com/docs/errors/20429","status":429}. twilio-go
// decodes it into a *client.TwilioRestError and does not retry.
func WriteTwilioError(w http.ResponseWriter, e *Error) {
	code := TwilioCode(e.Status)
	writeJSON(w, e.Status, TwilioError{
		Code:     code,
		Message:  e.Message,
		MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		Status:   e.Status,
	})
}

// ResendError is Resend's error body.
type ResendError struct {
	StatusCode int    `json:"statusCode"`
	Name       string `json:"name"`
	Message    string `json:"message"`
}

// ResendName is the Resend error name Keybrake answers with: the error's
// Type when it has one, else one chosen by status. A cap hit is
// "daily_quota_exceeded" rather than "rate_limit_exceeded": Resend's own
// name for a 429 that waiting a moment does not cure.
func ResendName(e *Error) string {
	switch {
	case e.Type != "":
		return e.Type // Resend's own name, e.g. concurrent_idempotent_requests
	case e.Status == http.StatusTooManyRequests && e.CapHit:
		return "daily_quota_exceeded"
	case e.Status == http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case e.Status == http.StatusUnauthorized && e.Code == "keybrake_missing_credential":
		return "missing_api_key"
	case e.Status == http.StatusUnauthorized:
		return "invalid_api_key"
	case e.Status == http.StatusForbidden:
		return "restricted_api_key"
	case e.Status == http.StatusNotFound:
		return "not_found"
	case e.Status == http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case e.Status == http.StatusConflict:
		return "invalid_idempotent_request"
	case e.Status >= 500:
		return "application_error"
	default:
		return "validation_error"
	}
}

// WriteResendError writes {"statusCode","name","message"} with
// Content-Type application/json, which resend-go needs to read the message
// (it turns a 429 into a *resend.RateLimitError; it never retries).
func WriteResendError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, ResendError{StatusCode: e.Status, Name: ResendName(e), Message: e.Message})
}

// IdempotencyErrors are the refusals of a reused key in an error format:
// Stripe's (400 idempotency_error; 409 idempotency_key_in_use), Resend's
// (409 invalid_idempotent_request; 409 concurrent_idempotent_requests), or
// a 409 for the others.
func IdempotencyErrors(format string) (mismatch, inFlight Error) {
	const (
		mismatchMsg = "This idempotency key was already used with another request; use a new key."
		inFlightMsg = "A request with this idempotency key is still in progress; retry it later."
	)
	switch format {
	case FormatStripe:
		return Error{Status: http.StatusBadRequest, Code: "idempotency_key_reused", Type: "idempotency_error", Message: mismatchMsg},
			Error{Status: http.StatusConflict, Code: "idempotency_key_in_use", Type: "invalid_request_error", Retryable: true, Message: inFlightMsg}
	case FormatResend:
		return Error{Status: http.StatusConflict, Code: "invalid_idempotent_request", Type: "invalid_idempotent_request", Message: mismatchMsg},
			Error{Status: http.StatusConflict, Code: "concurrent_idempotent_requests", Type: "concurrent_idempotent_requests", Retryable: true, Message: inFlightMsg}
	}
	return Error{Status: http.StatusConflict, Code: "keybrake_idempotency_mismatch", Message: mismatchMsg},
		Error{Status: http.StatusConflict, Code: "keybrake_idempotency_in_flight", Retryable: true, Message: inFlightMsg}
}
