// Package gate is Keybrake's per-request spend gate, in plain Go: it checks
// a vault key, reserves the call's cost in the ledger, swaps in the real
// secret, lets the next handler (Caddy's reverse_proxy) forward the call,
// and settles the reservation from the vendor's response.
package gate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/internal/authlimit"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// UnknownCostPolicy is what to do with an allowed call whose cost cannot be
// told from the request.
type UnknownCostPolicy struct {
	// Reserve, when true, reserves Amount for such a call; when false (the
	// default) the call is refused.
	Reserve bool
	Amount  money.Micros
}

// Ledger is what the gate needs of a ledger.Store: reserve, finish and
// record calls, and read what a key has counted for a vendor object.
type Ledger interface {
	Reserve(ctx context.Context, r ledger.ReserveRequest) (ledger.ReserveResult, error)
	Settle(ctx context.Context, callID string, s ledger.Settlement) error
	Release(ctx context.Context, callID string, s ledger.Settlement) error
	MarkUnknown(ctx context.Context, callID string, s ledger.Settlement) error
	RecordRefusal(ctx context.Context, c ledger.Call) error
	TagCall(ctx context.Context, callID, tag string, replayWindow time.Duration) (string, error)
	ObjectExposure(ctx context.Context, keyID, vendor, object string) (money.Micros, error)
}

// Config configures a Gate.
type Config struct {
	Vendor vendors.Vendor
	Store  Ledger
	Keys   *ledger.KeyCache
	// UnknownCost defaults to deny.
	UnknownCost UnknownCostPolicy
	// NotConfigured, when set, says why the vendor cannot forward anything
	// (its secrets are not set): every call is refused with a 503
	// (vendors.NotConfigured) carrying this message, in the vendor's
	// format, before anything else. Default: the vendor is configured.
	NotConfigured string
	// MaxRequestBody bounds the request body read for pricing. Default 1 MiB.
	MaxRequestBody int64
	// MaxResponseCapture bounds how much of the response body is kept to
	// read the transaction id and amount. Default 256 KiB.
	MaxResponseCapture int
	// SettleTimeout bounds each ledger write the gate makes (the
	// reservation, the settlement, a refusal's record). Default 10s.
	SettleTimeout time.Duration
	// SettleAfterResponse, when the Store is a ledger.Batcher, queues each
	// settlement for the ledger's next batch and lets the handler return
	// at once, so the client has its answer before the settlement commits
	// (a crash in between leaves the call reserved, never released, for
	// the reconciler). Logs, metrics and alerts follow the commit. Default
	// false: the settlement commits before the handler returns.
	SettleAfterResponse bool
	// Now is the clock; default time.Now. Tests inject their own.
	Now    func() time.Time
	Logger *zap.Logger
	// Observe, when set, is told of every call (metrics).
	Observe Observer
	// AuthLimiter slows down a client address that keeps presenting
	// unknown vault keys: past its burst the address is refused (429)
	// before its key is looked up. Default: 50 in a row, then 10 a second.
	AuthLimiter *authlimit.Limiter
	// DialFailed tells whether an error of the next handler happened
	// while connecting to the upstream (Caddy's reverseproxy.DialError).
	// With no connection ever obtained, such a call is released and
	// answered as safe to retry. Default: none (every upstream failure is
	// ambiguous unless a TLS handshake failed).
	DialFailed func(error) bool
	// Alerts, when set, is told of cap hits, spend that may cross a
	// threshold, and unknown outcomes; it writes them to the outbox.
	Alerts *alerts.Alerter
}

// Defaults of the failed-authentication limiter.
const (
	DefaultAuthBurst  = 50
	DefaultAuthRefill = 100 * time.Millisecond
)

// Next is the rest of the handler chain: Caddy's reverse_proxy.
type Next func(w http.ResponseWriter, r *http.Request) error

// Gate guards one vendor route.
type Gate struct {
	cfg  Config
	log  *zap.Logger
	idem idempotencyPolicy
}

// New returns a Gate.
func New(cfg Config) (*Gate, error) {
	if cfg.Vendor == nil || cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("gate needs a vendor, a store and a key cache")
	}
	if cfg.MaxRequestBody <= 0 {
		cfg.MaxRequestBody = 1 << 20
	}
	if cfg.MaxResponseCapture <= 0 {
		cfg.MaxResponseCapture = 256 << 10
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.AuthLimiter == nil {
		cfg.AuthLimiter = authlimit.New(DefaultAuthBurst, DefaultAuthRefill, 0)
	}
	return &Gate{cfg: cfg, log: cfg.Logger, idem: newIdempotencyPolicy(cfg.Vendor)}, nil
}

// Header names Keybrake sets on its answers.
const (
	HeaderCapHit = "X-Keybrake-Cap-Hit"
	// HeaderBudget names the budget that stopped a call when it is not the
	// key's own cap: "token", the budget of the API token that issued it.
	HeaderBudget    = "X-Keybrake-Budget"
	HeaderCallID    = "X-Keybrake-Call-Id"
	HeaderRemaining = "X-Keybrake-Remaining-Usd"
)

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
	// record says the refusal is written to the ledger (it is, whenever a
	// key is known; refusals of unknown credentials are only logged, so
	// that a flood of garbage cannot fill the ledger).
	record bool
}

func (f *refusal) vendorError() *vendors.Error {
	return &vendors.Error{Status: f.status, Code: f.code, Message: f.message, Type: f.errType, CapHit: f.capHit, Retryable: f.retryable,
		NothingSent: f.nothingSent}
}

func unavailable() *refusal {
	return &refusal{
		status: http.StatusServiceUnavailable, code: "keybrake_ledger_unavailable",
		message:   "Keybrake cannot reach its ledger, so it forwards nothing. Try again shortly.",
		outcome:   "ledger_unavailable",
		retryable: true,
	}
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

func keyStatusRefusal(outcome string) *refusal {
	f := &refusal{status: http.StatusUnauthorized, outcome: outcome, record: true}
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
