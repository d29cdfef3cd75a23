package stripe

import (
	"net/http"

	"github.com/keybrake/keybrake/vendors"
)

// WriteError implements vendors.Vendor with Stripe's error envelope
// {"error":{"type","code","message"}}. stripe-go retries a body it cannot
// parse, so every refusal uses exactly this shape; a refusal that will be
// the same on a retry carries Stripe-Should-Retry: false, which the SDKs
// obey before anything else. Declared vendors with the stripe error format
// share the one writer.
func (v *Vendor) WriteError(w http.ResponseWriter, e *vendors.Error) {
	vendors.WriteStripeError(w, e)
}
