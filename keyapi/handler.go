// Package keyapi is Keybrake's HTTP key API, mounted under /vault/: it issues
// and revokes vault keys and shows their spend, the audit trail of calls and a
// per-run summary.
//
// It is plain Go on net/http with no Caddy in it; the keybrake_api Caddy
// module passes requests through to a Handler unchanged.
package keyapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/authlimit"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// PathPrefix is the prefix of every path the Handler serves.
const PathPrefix = "/vault/"

// Defaults for Config.
const (
	DefaultMaxTTL     = 24 * time.Hour
	DefaultDefaultTTL = time.Hour
)

// Ledger is the part of the ledger the key API uses: keys, API tokens,
// the audit and its summaries, and resolving a call. It never reserves or
// settles: that is the gate's. A ledger.Store is one.
type Ledger interface {
	CreateKey(ctx context.Context, k ledger.Key) error
	GetKey(ctx context.Context, id string, now time.Time) (ledger.KeyUsage, error)
	KeyByHash(ctx context.Context, h ledger.Hash) (ledger.Key, error)
	ListKeys(ctx context.Context, f ledger.KeyFilter) ([]ledger.KeyUsage, string, error)
	RevokeKey(ctx context.Context, id string, now time.Time) (ledger.Key, error)
	RevokeKeys(ctx context.Context, f ledger.RevokeFilter, now time.Time) ([]string, error)
	PatchKey(ctx context.Context, id string, p ledger.KeyPatch) (ledger.Key, error)

	CreateToken(ctx context.Context, t ledger.Token) error
	TokenByHash(ctx context.Context, h ledger.Hash) (ledger.Token, error)
	GetToken(ctx context.Context, id string, now time.Time) (ledger.TokenUsage, error)
	ListTokens(ctx context.Context, now time.Time) ([]ledger.TokenUsage, error)
	RevokeToken(ctx context.Context, id string, now time.Time) (ledger.Token, error)

	Audit(ctx context.Context, f ledger.AuditFilter) ([]ledger.Call, string, error)
	Summary(ctx context.Context, f ledger.SummaryFilter) ([]ledger.SummaryRow, error)
	Resolve(ctx context.Context, callID string, res ledger.Resolution) (ledger.Call, error)
}

// Config configures a Handler.
type Config struct {
	// Store is the ledger. Required.
	Store Ledger
	// Tokens are the bearer tokens accepted by the API. Blank entries are
	// ignored (an unset {env.KEYBRAKE_API_TOKEN} placeholder becomes one);
	// with no token at all the API refuses every call.
	Tokens []string
	// Vendors are the vendor names a key may be issued for.
	Vendors []string
	// MaxTTL bounds expires_in (default 24h). DefaultTTL is used when
	// expires_in is omitted (default 1h, or MaxTTL when that is shorter).
	MaxTTL, DefaultTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// StaleAfter is how old a call still reserved must be before an
	// operator may resolve it (its node stopped). Default
	// ledger.DefaultStaleAfter.
	StaleAfter time.Duration
	// OnRevoke, when set, is called with the key id after every successful
	// revocation (the gate's key cache uses it).
	OnRevoke func(keyID string)
	// OnApprovalDecided, when set, is called after every decision on an
	// approval (approval.decided alerts).
	OnApprovalDecided func(ctx context.Context, a ledger.Approval)
	// Logger; default a no-op logger.
	Logger *zap.Logger
	// AuthLimiter slows down an address that keeps failing to
	// authenticate. Default: 10 failures in a row, then one per second.
	AuthLimiter *authlimit.Limiter
	// Subjects are, per vendor, the subjects its calls carry: a key's
	// allow or once_per naming another is refused. A vendor absent from
	// the map is not checked. Default none.
	Subjects map[string][]string
	// DefaultRules are, per vendor, the rules of a key issued without
	// any (a vendor block's default_rules). Default none.
	DefaultRules map[string]*rules.Rules
	// VaultKeyReaders read a vault key where a vendor's SDK sends it, for
	// GET /vault/self: each is tried in turn. Default none (the endpoint
	// then answers 401).
	VaultKeyReaders []func(*http.Request) (string, bool)
}

// settledWait bounds how long a request waits for this node's queued
// settlements before it reads.
const settledWait = 2 * time.Second

// Defaults of the failed-authentication limiter.
const (
	DefaultAuthBurst  = 10
	DefaultAuthRefill = time.Second
)

// Handler serves the key API. It implements http.Handler for paths that
// start with PathPrefix; any other path is answered 404.
type Handler struct {
	store      Ledger
	tokens     [][sha256.Size]byte
	vendors    map[string]bool
	vendorList []string
	maxTTL     time.Duration
	defaultTTL time.Duration
	now        func() time.Time
	onRevoke   func(string)
	log        *zap.Logger
	authLimit  *authlimit.Limiter
	staleAfter time.Duration
	subjects   map[string][]string
	defaults   map[string]*rules.Rules
	keyReaders []func(*http.Request) (string, bool)
	onDecided  func(context.Context, ledger.Approval)
}

var _ http.Handler = (*Handler)(nil)

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("keyapi: a ledger store is required")
	}
	if cfg.MaxTTL < 0 {
		return nil, fmt.Errorf("keyapi: max TTL %s is negative", cfg.MaxTTL)
	}
	if cfg.DefaultTTL < 0 {
		return nil, fmt.Errorf("keyapi: default TTL %s is negative", cfg.DefaultTTL)
	}
	h := &Handler{
		store:      cfg.Store,
		vendors:    map[string]bool{},
		maxTTL:     cfg.MaxTTL,
		defaultTTL: cfg.DefaultTTL,
		now:        cfg.Now,
		onRevoke:   cfg.OnRevoke,
		onDecided:  cfg.OnApprovalDecided,
		log:        cfg.Logger,
		authLimit:  cfg.AuthLimiter,
		subjects:   cfg.Subjects,
		defaults:   cfg.DefaultRules,
		keyReaders: cfg.VaultKeyReaders,
	}
	if h.authLimit == nil {
		h.authLimit = authlimit.New(DefaultAuthBurst, DefaultAuthRefill, 0)
	}
	if h.maxTTL == 0 {
		h.maxTTL = DefaultMaxTTL
	}
	if h.defaultTTL == 0 {
		h.defaultTTL = min(DefaultDefaultTTL, h.maxTTL)
	}
	if h.defaultTTL > h.maxTTL {
		return nil, fmt.Errorf("keyapi: default TTL %s is longer than the max TTL %s", h.defaultTTL, h.maxTTL)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.staleAfter = cfg.StaleAfter
	if h.staleAfter <= 0 {
		h.staleAfter = ledger.DefaultStaleAfter
	}
	for _, t := range cfg.Tokens {
		if strings.TrimSpace(t) == "" {
			continue
		}
		h.tokens = append(h.tokens, sha256.Sum256([]byte(t)))
	}
	for _, v := range cfg.Vendors {
		if v == "" {
			return nil, errors.New("keyapi: empty vendor name")
		}
		if !h.vendors[v] {
			h.vendors[v] = true
			h.vendorList = append(h.vendorList, v)
		}
	}
	sort.Strings(h.vendorList)
	return h, nil
}

// ServeHTTP authenticates the request, routes it and writes any error as
// JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if isUIPath(r.URL.Path) {
		h.serveUI(w, r)
		return
	}
	if r.URL.Path == PathPrefix+"self" {
		// Authenticated with the vault key itself, not an API token.
		if err := h.self(w, r); err != nil {
			h.writeError(w, r, err)
		}
		return
	}
	p, err := h.authenticate(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	r = withPrincipal(r, p)
	if b, ok := h.store.(ledger.Batcher); ok {
		// The gate settles after answering, in the ledger's batches: what
		// this node has queued (or is about to, its answer already on its
		// way) is written before the API reads, so a caller that has all
		// its answers sees them counted. Bounded: a response still
		// streaming does not hold a read up for long.
		ctx, cancel := context.WithTimeout(r.Context(), settledWait)
		_ = b.Settled(ctx)
		cancel()
	}
	if err := h.route(w, r); err != nil {
		h.writeError(w, r, err)
	}
}

// route dispatches on path, then method.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		return errNotFound("no such endpoint")
	}
	switch {
	case rest == "approvals" || strings.HasPrefix(rest, "approvals/"):
		return h.routeApprovals(w, r, strings.TrimPrefix(strings.TrimPrefix(rest, "approvals"), "/"))
	case rest == "keys":
		switch r.Method {
		case http.MethodGet:
			return h.listKeys(w, r)
		case http.MethodPost:
			return h.createKey(w, r)
		case http.MethodDelete:
			return h.revokeRun(w, r)
		}
		return methodNotAllowed(w, "GET, POST, DELETE")
	case strings.HasPrefix(rest, "keys/") && !strings.Contains(rest[len("keys/"):], "/") && len(rest) > len("keys/"):
		id := rest[len("keys/"):]
		switch r.Method {
		case http.MethodGet:
			return h.getKey(w, r, id)
		case http.MethodPatch:
			return h.patchKey(w, r, id)
		case http.MethodDelete:
			return h.revokeKey(w, r, id)
		}
		return methodNotAllowed(w, "GET, PATCH, DELETE")
	case rest == "tokens":
		switch r.Method {
		case http.MethodGet:
			return h.listTokens(w, r)
		case http.MethodPost:
			return h.createToken(w, r)
		}
		return methodNotAllowed(w, "GET, POST")
	case strings.HasPrefix(rest, "tokens/") && !strings.Contains(rest[len("tokens/"):], "/") && len(rest) > len("tokens/"):
		id := rest[len("tokens/"):]
		switch r.Method {
		case http.MethodGet:
			return h.getToken(w, r, id)
		case http.MethodDelete:
			return h.revokeToken(w, r, id)
		}
		return methodNotAllowed(w, "GET, DELETE")
	case rest == "audit":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		return h.audit(w, r)
	case rest == "audit/export":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		return h.exportAudit(w, r)
	case strings.HasPrefix(rest, "calls/") && strings.HasSuffix(rest, "/resolve") &&
		strings.Count(rest, "/") == 2 && len(rest) > len("calls//resolve"):
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, "POST")
		}
		return h.resolveCall(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "calls/"), "/resolve"))
	case rest == "whoami":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		return h.whoami(w, r)
	case rest == "summary":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		return h.summary(w, r)
	}
	return errNotFound("no such endpoint")
}

// clock is the current time in UTC at microsecond precision, the precision
// Postgres keeps: what a POST or DELETE answers is what a later GET shows.
func (h *Handler) clock() time.Time {
	return h.now().UTC().Truncate(time.Microsecond)
}

func methodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: "method not allowed; allowed: " + allow}
}
