package keyapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/authlimit"
	"github.com/keybrake/keybrake/ledger"
)

// Roles of API tokens: see ledger.RoleAdmin and the rest. The configured
// (Caddyfile) tokens are bootstrap admins.
const (
	RoleAdmin  = ledger.RoleAdmin
	RoleIssuer = ledger.RoleIssuer
	RoleReader = ledger.RoleReader
)

// codeForbidden is the error code of a call the caller's role may not make.
const (
	codeForbidden       = "forbidden"
	codePolicyViolation = "policy_violation"
)

// principal is who a request's bearer token is.
type principal struct {
	Role string
	// TokenID is the stored token's id; "" for a configured (bootstrap)
	// token.
	TokenID string
	// Policy bounds what an issuer may issue; nil for none.
	Policy *policy
}

// owns tells whether the principal may act on a key: an issuer only on the
// keys it issued, an admin on any.
func (p principal) owns(k ledger.Key) bool {
	return p.Role == RoleAdmin || (p.Role == RoleIssuer && k.TokenID == p.TokenID)
}

type principalKey struct{}

// principalOf is the principal authenticate put on the request.
func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// requireRole refuses, with 403, a request whose principal has none of the
// given roles. It is the one role check of the API: every route that is
// not open to all roles calls it first.
func requireRole(r *http.Request, roles ...string) error {
	p := principalOf(r)
	if p.Role != "" && slices.Contains(roles, p.Role) {
		return nil
	}
	role := p.Role
	if role == "" {
		role = "none"
	}
	return &apiError{Status: http.StatusForbidden, Code: codeForbidden,
		Message: "this API token's role (" + role + ") may not do this; it needs " + strings.Join(roles, " or ")}
}

// authenticate finds the principal of the bearer token: a configured token
// (compared in constant time, as SHA-256 digests, so neither length nor
// contents leak through timing) is a bootstrap admin; any other is looked
// up by its SHA-256 among the stored tokens, and must not be revoked.
//
// The token is checked before the failed-auth limiter is asked: a valid
// token is never refused for what other clients behind the same address
// sent. Only failing attempts count and, past the limiter's burst, are
// refused with 429 (see authlimit): guessing a token, the bootstrap one
// above all, is slowed to a crawl.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (principal, error) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		if len(h.tokens) == 0 {
			return principal{}, errNotConfigured()
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="keybrake"`)
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
			Message: "missing API token: send Authorization: Bearer <token>"}
	}
	sum := sha256.Sum256([]byte(token))
	match := 0
	for i := range h.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], h.tokens[i][:])
	}
	if match == 1 {
		return principal{Role: RoleAdmin}, nil
	}
	t, err := h.store.TokenByHash(r.Context(), ledger.Hash(sum))
	switch {
	case errors.Is(err, ledger.ErrNotFound):
	case err != nil:
		return principal{}, err
	case subtle.ConstantTimeCompare(t.Hash[:], sum[:]) == 1 && t.RevokedAt == nil:
		p := principal{Role: t.Role, TokenID: t.ID}
		if p.Role == RoleIssuer {
			if p.Policy, err = decodeStoredPolicy(t.Policy); err != nil {
				return principal{}, err
			}
		}
		return p, nil
	}
	addr := authlimit.ClientAddr(r.RemoteAddr)
	if ok, wait := h.authLimit.Allow(addr, h.now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
		h.log.Warn("key API: too many failed authentications; refused", zap.String("remote_addr", r.RemoteAddr))
		return principal{}, &apiError{Status: http.StatusTooManyRequests, Code: "too_many_failed_attempts",
			Message: "too many failed authentications from this address; try again later"}
	}
	h.failedAuth(r, addr)
	if len(h.tokens) == 0 {
		return principal{}, errNotConfigured()
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="keybrake", error="invalid_token"`)
	return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "invalid API token"}
}

// failedAuth counts a refused token against its address and logs it,
// never the candidate secret itself.
func (h *Handler) failedAuth(r *http.Request, addr string) {
	h.authLimit.Fail(addr, h.now())
	h.log.Info("key API: invalid token", zap.String("remote_addr", r.RemoteAddr),
		zap.String("method", r.Method), zap.String("path", r.URL.Path))
}

func errNotConfigured() error {
	return &apiError{Status: http.StatusUnauthorized, Code: "api_token_not_configured",
		Message: "no API token is configured (set KEYBRAKE_API_TOKEN); the key API refuses every call"}
}

func withPrincipal(r *http.Request, p principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}

// BootstrapTokenID is recorded as who acted for a configured (Caddyfile)
// token, which has no id of its own.
const BootstrapTokenID = "bootstrap"

// id names the principal in records: its token id, or BootstrapTokenID.
func (p principal) id() string {
	if p.TokenID == "" {
		return BootstrapTokenID
	}
	return p.TokenID
}

// requireAdmin returns the caller when it is an admin, else a 403.
func (h *Handler) requireAdmin(r *http.Request) (principal, error) {
	return principalOf(r), requireRole(r, RoleAdmin)
}
