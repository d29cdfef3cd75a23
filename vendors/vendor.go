// Package vendors describes how Keybrake speaks each vendor's API: where its
// SDK puts the credential, how the real secret goes in, what a call will cost
// before it is made, what it cost after, and how the vendor shapes its errors.
//
// A Vendor is plain Go with no Caddy in it; the gate (package gate) drives it.
package vendors

import (
	"net/http"

	"github.com/keybrake/keybrake/money"
)

// Estimate is what a request will cost, decided before it is forwarded.
type Estimate struct {
	// Cost is the amount to reserve.
	Cost money.Micros
	// Known is false when the cost cannot be told from the request; the
	// gate then applies the vendor's unknown_cost policy.
	Known bool
	// SeenTxn, when set, names an earlier transaction (a PaymentIntent being
	// confirmed or captured) whose amount Keybrake may already have counted.
	// If the ledger has a settled call with that transaction id the call
	// costs nothing more (Cost is then ignored); if not, the estimate is
	// treated as unknown unless Known is true.
	SeenTxn string
	// Reason says, for an unknown cost, why (shown in the refusal).
	Reason string
}

// Settle decisions: what the response means for the reservation.
const (
	DecisionSettle   = "settle"   // money moved: record the real cost
	DecisionUnpriced = "unpriced" // money moved, price not known yet: keep the estimate as provisional cost
	DecisionRelease  = "release"  // the vendor refused; no money moved
	DecisionUnknown  = "unknown"  // ambiguous; keep the reservation for reconciliation
)

// Result is what a vendor's response says about the call.
type Result struct {
	Decision string
	// Cost is the real cost when Decision is DecisionSettle; for
	// DecisionUnpriced it is ignored and the estimate is kept.
	Cost     money.Micros
	TxnID    string // pi_…, ch_…, SM…, an email id
	Amount   *int64 // the vendor's amount, in its minor units
	Currency string
}

// Error is a refusal Keybrake answers itself, rendered in the vendor's own
// error format by WriteError.
type Error struct {
	Status  int
	Code    string // machine-readable, e.g. "keybrake_cap_hit"
	Message string
	// CapHit marks the answer with X-Keybrake-Cap-Hit: true and tells the
	// vendor to add its own do-not-retry signals.
	CapHit bool
	// Retryable says the same request may succeed later (the ledger was
	// unreachable, the upstream failed): vendors with a retry signal (Stripe)
	// leave it to the SDK; every other refusal tells the SDK not to retry.
	Retryable bool
}

func (e *Error) Error() string { return e.Message }

// Vendor is one paid API.
type Vendor interface {
	// Name is the vendor's name in keys and routes: "stripe", "twilio"...
	Name() string
	// Credential returns the vault key the client sent where this vendor's
	// SDK puts its credential. ok is false when there is none or it is
	// malformed.
	Credential(r *http.Request) (vaultKey string, ok bool)
	// Authorize rewrites the request for the real vendor: the real
	// credential replaces the vault key (and, for Twilio, the account SID in
	// the path). It must leave no trace of the vault key.
	Authorize(r *http.Request) error
	// Estimate tells what the call will cost from its method, path (as the
	// vendor sees it, prefix stripped) and body. A *Error is a refusal of a
	// malformed request (a 400 in the vendor's format).
	Estimate(r *http.Request, body []byte) (Estimate, error)
	// Settle reads the vendor's response (status, headers, up to the first
	// bytes of the body) and says what it cost.
	Settle(r *http.Request, status int, header http.Header, body []byte, est Estimate) Result
	// WriteError writes a refusal in the vendor's own error format.
	WriteError(w http.ResponseWriter, e *Error)
}

// StatusDecision is the default reading of a response status: 2xx moved
// money, 5xx (and anything else unexpected) is ambiguous, 4xx moved none.
func StatusDecision(status int) string {
	switch {
	case status >= 200 && status < 300:
		return DecisionSettle
	case status >= 400 && status < 500:
		return DecisionRelease
	default:
		return DecisionUnknown
	}
}
