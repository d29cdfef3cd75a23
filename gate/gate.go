// Package gate is Keybrake's per-request spend gate, in plain Go: it checks
// a vault key, reserves the call's cost in the ledger, swaps in the real
// secret, lets the next handler (Caddy's reverse_proxy) forward the call,
// and settles the reservation from the vendor's response.
package gate

import (
	"context"
	"errors"
	"net/http"
	"sync"
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
	// Approvals holds the calls a key's approval rule sends to a person
	// (NewApprovals). Default none: such a call is refused with a 503.
	Approvals *Approvals
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
	// settleLater is the Store as a ledger.Batcher when settlements follow
	// the answer (SettleAfterResponse); nil when they commit before the
	// handler returns.
	settleLater ledger.Batcher
	// stopping is closed by Shutdown: calls held for approval stop waiting.
	stopping chan struct{}
	stopOnce sync.Once
	// servers are the net/http servers whose shutdown calls Shutdown.
	servers sync.Map
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
	g := &Gate{cfg: cfg, log: cfg.Logger, idem: newIdempotencyPolicy(cfg.Vendor), stopping: make(chan struct{})}
	if b, ok := cfg.Store.(ledger.Batcher); ok && cfg.SettleAfterResponse {
		g.settleLater = b
	}
	return g, nil
}

// Header names Keybrake sets on its answers.
const (
	HeaderCapHit = "X-Keybrake-Cap-Hit"
	// HeaderBudget names the budget that stopped a call when it is not the
	// key's own cap: "token", the budget of the API token that issued it.
	HeaderBudget    = "X-Keybrake-Budget"
	HeaderCallID    = "X-Keybrake-Call-Id"
	HeaderRemaining = "X-Keybrake-Remaining-Usd"
	// HeaderRule names the rule of the key that refused a call
	// (once_per, rate...).
	HeaderRule = "X-Keybrake-Rule"
)
