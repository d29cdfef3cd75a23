package resend

import (
	"net/http"
	"time"

	"github.com/keybrake/keybrake/vendors"
)

// Idempotency implements vendors.IdempotencyHonouring. Resend keeps an
// Idempotency-Key for 24 hours on POST /emails and POST /emails/batch
// (resend.com/docs/dashboard/emails/idempotency-keys): the same key with
// the same payload answers the first response and sends nothing; with
// another payload it answers 409 invalid_idempotent_request; while the
// first request is still running, 409 concurrent_idempotent_requests,
// which may be retried.
func (v *Vendor) Idempotency() vendors.Idempotency {
	return vendors.Idempotency{
		Header:  "Idempotency-Key",
		Methods: []string{http.MethodPost},
		Window:  24 * time.Hour,
		Mismatch: vendors.Error{Status: http.StatusConflict, Code: "invalid_idempotent_request", Type: "invalid_idempotent_request",
			Message: "This idempotency key was already used with a different payload; change the key or send the same payload."},
		InFlight: vendors.Error{Status: http.StatusConflict, Code: "concurrent_idempotent_requests", Type: "concurrent_idempotent_requests", Retryable: true,
			Message: "A request with this idempotency key is still in progress; retry it later."},
	}
}

var _ vendors.IdempotencyHonouring = (*Vendor)(nil)
