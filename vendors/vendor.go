// Package vendors describes how Keybrake speaks each vendor's API: where its
// SDK puts the credential, how the real secret goes in, what a call will cost
// before it is made, what it cost after, and how the vendor shapes its errors.
//
// A Vendor is plain Go with no Caddy in it; the gate (package gate) drives it.
package vendors

import (
	"net/http"
	"slices"
	"time"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/money"
)

// Estimate is what a request will cost, decided before it is forwarded.
//
// Every call the gate forwards is priced (Cost, Known), free for a reason the
// vendor documents (Known with Cost 0), or refused (Known false: the
// vendor's unknown_cost policy applies; or an *Error from Estimate).
type Estimate struct {
	// Cost is the amount to reserve.
	Cost money.Micros
	// Known is false when the cost cannot be told from the request; the
	// gate then applies the vendor's unknown_cost policy.
	Known bool
	// Reason says, for an unknown cost, why (shown in the refusal); for a
	// free call, why it is free (docs/vendors.md lists the same reasons).
	Reason string

	// Minimum, when above zero and below Cost, lets the ledger reserve less
	// than Cost: as much of Cost as the key's headroom allows, but at least
	// Minimum. Fit then bounds the request to what was reserved (Twilio's
	// TimeLimit), so the call cannot outspend its reservation.
	Minimum money.Micros
	// Fit returns the body to forward so that the call costs at most
	// reserved. The gate calls it when Minimum is set, with
	// Minimum <= reserved <= Cost.
	Fit func(reserved money.Micros) ([]byte, error)

	// Object names the vendor object the call acts on when it is known
	// before forwarding (the pi_… of a confirm, a capture or an update).
	// Exposure is then the most that object can have moved, in USD, once
	// this call is done; the gate reserves Exposure less what the key has
	// already counted for Object (Counted), never below zero, and Cost is
	// ignored. A free GET never counts: only reservations and costs do.
	Object   string
	Exposure money.Micros
	// Counted is set by the gate: what the key had counted for Object
	// before this call. Settle uses it to price the call from the vendor's
	// answer.
	Counted money.Micros

	// Items, for a batch the vendor answers item by item (Resend's
	// /emails/batch in permissive mode), is the cost of each item in the
	// request's order; Cost is their sum. Settle charges the items the
	// vendor reports sent, each at its own cost, never an average.
	Items []money.Micros
}

// Idempotency says how a vendor honours an idempotency header. A true
// replay (same method, canonical path, body and scope headers as an original
// that was forwarded with a reservation, within Window) is answered from the
// vendor's own cache and moves no money, so the gate forwards it free; the
// same key with another request is refused with Mismatch before forwarding;
// a replay while the original is still in flight is refused with InFlight.
// A vendor that does not implement IdempotencyHonouring (Twilio) never gets
// a free replay.
type Idempotency struct {
	// Header is the request header carrying the key ("Idempotency-Key").
	Header string
	// Methods are the methods on which the vendor honours it (POST).
	Methods []string
	// Paths, when not empty, are the only paths on which the vendor
	// honours it (Resend: /emails and /emails/batch), each a pattern whose
	// "*" segments match one segment. Empty: every path.
	Paths []string
	// Window is how long the vendor keeps a key (Stripe, Resend: 24h).
	Window time.Duration
	// ScopeHeaders are request headers that scope keys at the vendor
	// (Stripe-Account): they are part of the request's fingerprint.
	ScopeHeaders []string
	// Mismatch is the vendor's own refusal of a key reused with another
	// request (Stripe: 400 idempotency_error; Resend: 409).
	Mismatch Error
	// InFlight is the vendor's refusal of a key whose first request is
	// still running (Stripe: 409, retried by the SDKs).
	InFlight Error
}

// Honours reports whether the vendor honours the header on method and
// path (canonical, as the allowlist sees it).
func (i Idempotency) Honours(method, path string) bool {
	if i.Header == "" || i.Window <= 0 || !slices.Contains(i.Methods, method) {
		return false
	}
	if len(i.Paths) == 0 {
		return true
	}
	for _, p := range i.Paths {
		if allowlist.MatchPath(p, path) {
			return true
		}
	}
	return false
}

// IdempotencyHonouring is implemented by a vendor that honours an
// idempotency header.
type IdempotencyHonouring interface {
	Idempotency() Idempotency
}

// PathRecorder is implemented by a vendor whose request paths carry a
// client-chosen segment that Authorize rewrites (Twilio's account SID, where
// a client may have put the vault key): RecordedPath is the path as it is
// logged and audited.
type PathRecorder interface {
	RecordedPath(path string) string
}

// ScopeRecorder is implemented by a vendor whose calls can only be found
// again later with something the request says beyond its path: the account
// a header chooses (Stripe Connect's Stripe-Account), or a message's
// recipient (Twilio's To). The scope, as a query string
// ("stripe_account=acct_…"), is recorded after the path, so whoever
// reconciles the call asks the right question. body is the client's.
type ScopeRecorder interface {
	RecordedScope(r *http.Request, body []byte) string
}

// Decision is what a vendor's response means for the call's reservation.
// The gate finishes the call in the ledger from it (ledger.FinishMode):
// settle and unpriced settle, release releases, unknown marks it unknown.
type Decision string

// Settle decisions.
const (
	DecisionSettle   Decision = "settle"   // money moved: record the real cost
	DecisionUnpriced Decision = "unpriced" // money moved, price not known yet: keep the estimate as provisional cost
	DecisionRelease  Decision = "release"  // the vendor refused; no money moved
	DecisionUnknown  Decision = "unknown"  // ambiguous; keep the reservation for reconciliation
)

// Result is what a vendor's response says about the call.
type Result struct {
	Decision Decision
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
	// Type is the vendor's error type where it has one (Stripe's
	// "idempotency_error"); empty means the vendor's default.
	Type string
	// Outcome is the call outcome recorded for this refusal when Estimate
	// returns it; empty means bad_request.
	Outcome string
	// CapHit marks the answer with X-Keybrake-Cap-Hit: true and tells the
	// vendor to add its own do-not-retry signals.
	CapHit bool
	// Retryable says the same request may succeed later (the ledger was
	// unreachable, the upstream failed): vendors with a retry signal (Stripe)
	// leave it to the SDK; every other refusal tells the SDK not to retry.
	Retryable bool
	// NothingSent says the request provably never reached the vendor (no
	// connection to it could be made), so resending it is safe whatever
	// its method: vendors with an explicit retry signal send it
	// (Stripe-Should-Retry: true, x-should-retry: true).
	NothingSent bool
}

// OutcomeCredentialDenied is the outcome of a call to an endpoint that mints
// vendor credentials, refused whatever the key's allowlist says.
const OutcomeCredentialDenied = "credential_denied"

// MintsCredential is the refusal of an endpoint that mints vendor
// credentials (Resend /api-keys, Twilio Keys, SigningKeys, sub-accounts): a
// new full-access secret would be a permanent way around Keybrake.
func MintsCredential(what string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "keybrake_credential_endpoint", Outcome: OutcomeCredentialDenied,
		Message: "Keybrake refuses " + what + ": it mints vendor credentials, which would get around every cap. No vault key may call it."}
}

// CodeNotConfigured is the code of the 503 a vendor answers while it lacks
// its secrets.
const CodeNotConfigured = "keybrake_vendor_not_configured"

// NotConfigured is the refusal of a call to a vendor that lacks its
// secrets (they come from the environment, which does not have them yet):
// nothing is forwarded until they are set. It is not retried by the SDKs,
// since a retry cannot fix it.
func NotConfigured(message string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotConfigured, Message: message}
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
func StatusDecision(status int) Decision {
	switch {
	case status >= 200 && status < 300:
		return DecisionSettle
	case status >= 400 && status < 500:
		return DecisionRelease
	default:
		return DecisionUnknown
	}
}
