package stripe

import (
	"encoding/json"
	"net/http"

	"github.com/keybrake/keybrake/vendors"
)

// errorBody is Stripe's error envelope. stripe-go retries a body it cannot
// parse, so every refusal uses exactly this shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError implements vendors.Vendor.
func (v *Vendor) WriteError(w http.ResponseWriter, e *vendors.Error) {
	errType := "invalid_request_error"
	if e.Status >= 500 {
		errType = "api_error"
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache, no-store")
	// Stripe SDKs obey this header before anything else: a refusal by
	// Keybrake will be the same on a retry. A retryable one (ledger
	// unreachable, upstream failed) is left to the SDK's own judgement.
	if !e.Retryable {
		h.Set("Stripe-Should-Retry", "false")
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: errorDetail{Type: errType, Code: e.Code, Message: e.Message}})
}
