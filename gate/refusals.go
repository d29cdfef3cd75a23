package gate

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
	"github.com/keybrake/keybrake/vendors"
)

// Every refusal the gate answers is built here. Whether it is recorded is
// not the refusal's to say but the stage's that refused (serve.go): before
// the reservation, refuse records it; Reserve records its own; after the
// reservation, release records it on the call's row.

// refusal is a call refused by the gate, before anything is forwarded.
type refusal struct {
	status    int
	code      string
	message   string
	errType   string // the vendor's error type, when not its default
	outcome   string
	capHit    bool
	budget    string // the X-Keybrake-Budget value, when a budget stopped it
	retryable bool
	// nothingSent: the call provably never reached the vendor.
	nothingSent bool
	// rule names the rule that refused the call (X-Keybrake-Rule, and the
	// call's record); retryAfter, for rate, is the Retry-After.
	rule       string
	retryAfter time.Duration
	// approvalID is the X-Keybrake-Approval-Id value, for a call refused
	// while its approval is pending.
	approvalID string
}

func (f *refusal) vendorError() *vendors.Error {
	return &vendors.Error{Status: f.status, Code: f.code, Message: f.message, Type: f.errType, CapHit: f.capHit, Retryable: f.retryable,
		NothingSent: f.nothingSent, RetryAfter: f.retryAfter}
}

// OutcomeAuthThrottled is the logged outcome of a call refused because its
// address kept presenting unknown vault keys (nothing is recorded: no key
// is known).
const OutcomeAuthThrottled = "auth_throttled"

// outcomeLedgerUnavailable is the logged outcome of a call refused because
// the ledger could not be read or written. It is never recorded: the
// ledger that failed would be asked to take the record.
const outcomeLedgerUnavailable = "ledger_unavailable"

func missingCredential(vendor string) *refusal {
	return &refusal{status: http.StatusUnauthorized, code: "keybrake_missing_credential",
		message: "No vault key provided. Send the vault key where the " + vendor + " SDK sends its API key.",
		outcome: ledger.OutcomeUnauthenticated}
}

func authThrottled() *refusal {
	return &refusal{status: http.StatusTooManyRequests, code: "keybrake_too_many_failed_attempts",
		message: "Too many unknown vault keys from this address; Keybrake refuses unknown keys from it for a while.",
		outcome: OutcomeAuthThrottled}
}

// keyStatusRefusal refuses a key that is known but may not call: revoked,
// expired, issued for another vendor; any other outcome is an invalid key.
func keyStatusRefusal(outcome string) *refusal {
	f := &refusal{status: http.StatusUnauthorized, outcome: outcome}
	switch outcome {
	case ledger.OutcomeRevoked:
		f.code, f.message = "keybrake_key_revoked", "This vault key has been revoked."
	case ledger.OutcomeExpired:
		f.code, f.message = "keybrake_key_expired", "This vault key has expired."
	case ledger.OutcomeWrongVendor:
		f.code, f.message = "keybrake_wrong_vendor", "This vault key was issued for another vendor."
	default:
		f.code, f.message = "keybrake_invalid_key", "Invalid vault key."
	}
	return f
}

// invalidKey refuses a vault key the ledger does not know.
func invalidKey() *refusal {
	return &refusal{status: http.StatusUnauthorized, code: "keybrake_invalid_key",
		message: "Invalid vault key.", outcome: ledger.OutcomeUnauthenticated}
}

// malformed refuses a request Keybrake will not read or forward as it is:
// a 400, recorded as bad_request.
func malformed(code, message string) *refusal {
	return &refusal{status: http.StatusBadRequest, code: code, message: message, outcome: ledger.OutcomeBadRequest}
}

func badPath(err error) *refusal {
	return malformed("keybrake_bad_path", "Keybrake refuses this path: "+err.Error()+".")
}

func endpointDenied(method, path string) *refusal {
	return &refusal{status: http.StatusForbidden, code: "keybrake_endpoint_denied",
		message: "This vault key may not call " + method + " " + path + ".", outcome: ledger.OutcomeEndpointDenied}
}

func bodyUnreadable() *refusal {
	return malformed("keybrake_body_unreadable", "The request body could not be read.")
}

func bodyTooLarge() *refusal {
	return &refusal{status: http.StatusRequestEntityTooLarge, code: "keybrake_body_too_large",
		message: "The request body is larger than Keybrake accepts.", outcome: ledger.OutcomeBadRequest}
}

func keyInURL() *refusal {
	return malformed("keybrake_key_in_url", "The vault key must not appear in the URL.")
}

func keyInBody() *refusal {
	return malformed("keybrake_key_in_body", "The vault key must not appear in the request body.")
}

func manyIdempotencyKeys() *refusal {
	return malformed("keybrake_bad_idempotency_key", "Send one Idempotency-Key header at most.")
}

func badIdempotencyKey() *refusal {
	return malformed("keybrake_bad_idempotency_key",
		"The Idempotency-Key must be at most 255 characters of valid UTF-8 with no control characters.")
}

// estimateRefusal is the refusal of a call the vendor could not price
// (Vendor.Estimate failed), bound to its reservation (Estimate.Fit failed:
// a cap hit when the reservation covers no unit of the bound) or read one
// way only (vendors.CheckMethodOverride): the vendor's own *vendors.Error,
// with its outcome, when it is one, else a 400.
func estimateRefusal(err error) *refusal {
	f := badRequest(err)
	var ve *vendors.Error
	if errors.As(err, &ve) {
		f.status, f.code, f.message, f.errType, f.capHit = ve.Status, ve.Code, ve.Message, ve.Type, ve.CapHit
		switch {
		case ve.Outcome != "":
			f.outcome = ve.Outcome
		case ve.CapHit: // a Fit the reservation cannot cover
			f.outcome = ledger.OutcomeCapHit
		}
	}
	return f
}

// unknownCost refuses a call whose cost cannot be told from the request
// under the unknown_cost policy deny; reason, when set, says why.
func unknownCost(reason string) *refusal {
	msg := "Keybrake cannot tell what this call will cost, and this vendor's unknown_cost policy is deny."
	if reason != "" {
		msg = "Keybrake cannot tell what this call will cost (" + reason + "), and this vendor's unknown_cost policy is deny."
	}
	return &refusal{status: http.StatusForbidden, code: "keybrake_unknown_cost", message: msg,
		outcome: ledger.OutcomeUnknownCost}
}

// badRequest refuses a request with err's message.
func badRequest(err error) *refusal {
	return malformed("keybrake_bad_request", err.Error())
}

func unavailable() *refusal {
	return &refusal{
		status: http.StatusServiceUnavailable, code: "keybrake_ledger_unavailable",
		message:   "Keybrake cannot reach its ledger, so it forwards nothing. Try again shortly.",
		outcome:   outcomeLedgerUnavailable,
		retryable: true,
	}
}

func capHitRefusal(remaining money.Micros) *refusal {
	return &refusal{
		status: http.StatusTooManyRequests, code: "keybrake_cap_hit",
		message: fmt.Sprintf("This vault key has reached its spending cap (%s left, not enough for this call). "+
			"Keybrake forwarded nothing; retrying will not help.", remaining.Dollars()),
		outcome: ledger.OutcomeCapHit, capHit: true,
	}
}

// budgetHitRefusal: the key had room, the budget of the token that issued
// it did not.
func budgetHitRefusal(remaining money.Micros) *refusal {
	return &refusal{
		status: http.StatusTooManyRequests, code: "keybrake_budget_hit",
		message: fmt.Sprintf("The API token that issued this vault key has reached its budget across its keys (%s left, not enough for this call). "+
			"Keybrake forwarded nothing; retrying will not help.", remaining.Dollars()),
		outcome: ledger.OutcomeBudgetHit, capHit: true, budget: "token",
	}
}

// idempotencyRefusal is the vendor's own refusal of a reused idempotency
// key: with another request, or while its original is still in flight.
func (g *Gate) idempotencyRefusal(outcome string) *refusal {
	e := g.idem.Mismatch
	if outcome == ledger.OutcomeIdempotencyInFlight {
		e = g.idem.InFlight
	}
	f := &refusal{status: e.Status, code: e.Code, message: e.Message, errType: e.Type, retryable: e.Retryable, outcome: outcome}
	if f.status == 0 {
		f.status, f.code = http.StatusBadRequest, "keybrake_idempotency_mismatch"
		f.message = "This Idempotency-Key was used with another request."
	}
	return f
}

// clientGone is a call whose client left while its reservation was made.
// Its answer reaches no one; it is logged and recorded all the same.
func clientGone() *refusal {
	return &refusal{status: statusClientClosed, code: "keybrake_client_gone",
		message: "The client left before the call was forwarded.", outcome: ledger.OutcomeClientGone}
}

// authorizeRefusal is the refusal of a call the vendor could not rewrite
// for upstream (Vendor.Authorize failed): the vendor's own *vendors.Error
// when it is one (Twilio's 404 for a path with no account), else a 400.
func authorizeRefusal(err error) *refusal {
	f := badRequest(err)
	var ve *vendors.Error
	if errors.As(err, &ve) && ve.Status >= 400 && ve.Status < 600 {
		f.status, f.retryable = ve.Status, ve.Retryable
		if ve.Code != "" {
			f.code = ve.Code
		}
		if ve.Message != "" {
			f.message = ve.Message
		}
	}
	return f
}

// unreachable is the answer to a call that never reached the vendor: no
// connection to it could be made. Nothing is held; a retry is safe.
func unreachable() *refusal {
	return &refusal{
		status: http.StatusBadGateway, code: "keybrake_upstream_unreachable",
		message: "Keybrake could not connect to the vendor, so the call was not made and nothing is reserved. " +
			"Retrying is safe.",
		outcome: ledger.OutcomeUpstreamUnreachable, retryable: true, nothingSent: true,
	}
}

// upstreamFailed is the answer to a call the vendor gave no answer to,
// when nothing has reached the client yet: in the vendor's format rather
// than Caddy's empty 502.
func upstreamFailed() *refusal {
	return &refusal{status: http.StatusBadGateway, code: "keybrake_upstream_error",
		message: "Keybrake could not get an answer from the vendor. The call may or may not have been made; " +
			"its reservation is kept until it is reconciled.",
		outcome: ledger.OutcomeUpstreamError, retryable: true}
}

// ruleRefusal is the answer to a call a rule refused, in the vendor's
// format: 403 keybrake_rule_denied, not retried by the SDKs; for rate, 429
// keybrake_rate_limited with Retry-After, the one refusal an SDK may retry
// (nothing was sent or reserved); for max_calls, 429 keybrake_cap_hit, a
// cap on calls that waiting does not cure.
func ruleRefusal(rule, message string, retryAfter time.Duration) *refusal {
	f := &refusal{status: http.StatusForbidden, code: "keybrake_rule_denied", message: message,
		outcome: ledger.OutcomeRuleDenied, rule: rule}
	switch rule {
	case rules.RuleRate:
		f.status, f.code, f.retryable, f.retryAfter = http.StatusTooManyRequests, "keybrake_rate_limited", true, retryAfter
	case rules.RuleMaxCalls:
		f.status, f.code, f.capHit = http.StatusTooManyRequests, "keybrake_cap_hit", true
	}
	return f
}

// ledgerRuleRefusal is the answer to a call the ledger's rules refused
// (Reserve has recorded it).
func ledgerRuleRefusal(res ledger.ReserveResult) *refusal {
	var msg string
	switch res.Rule {
	case rules.RuleRate:
		msg = "This vault key's rate rule allows no more calls just now. Keybrake forwarded nothing; retry after " +
			retryAfterSeconds(res.RetryAfter) + " seconds."
	case rules.RuleMaxCalls:
		msg = "This vault key has made all the calls its max_calls rule allows. Keybrake forwarded nothing; retrying will not help."
	case rules.RuleOncePer:
		msg = "This vault key allows one call per value of its once_per subject, and this call names one already used. " +
			"Keybrake forwarded nothing; retrying will not help."
	default:
		msg = "A rule of this vault key refuses this call (" + res.Rule + ")."
	}
	return ruleRefusal(res.Rule, msg, res.RetryAfter)
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up, at
// least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}

// approvalDenied: a person denied the call. Retrying will not help.
func approvalDenied(a ledger.Approval) *refusal {
	msg := "A person denied this call"
	if a.Reason != "" {
		msg += ": " + a.Reason
	}
	return &refusal{status: http.StatusForbidden, code: "keybrake_approval_denied",
		message: msg + ". Keybrake forwarded nothing and released its reservation.",
		outcome: ledger.OutcomeApprovalDenied, approvalID: a.ID}
}

// approvalPending: nobody decided while the call waited. Not retried by
// the SDKs: a person must approve it first; then the same request, sent
// again, goes through once.
func approvalPending(id string) *refusal {
	return &refusal{status: http.StatusForbidden, code: "keybrake_approval_pending",
		message: "This call needs a person's approval (" + id + ") and none came in time. Keybrake forwarded nothing " +
			"and released its reservation. Once it is approved, send the same request again: it goes through once.",
		outcome: ledger.OutcomeApprovalPending, approvalID: id}
}
