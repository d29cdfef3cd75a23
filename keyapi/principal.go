package keyapi

import "net/http"

// BootstrapTokenID is recorded as who acted for a configured (Caddyfile)
// token, which has no id of its own.
const BootstrapTokenID = "bootstrap"

// principal is who an authenticated request's API token is.
type principal struct {
	Role    string
	TokenID string // empty for a configured (bootstrap) token
}

// id names the principal in records: its token id, or BootstrapTokenID.
func (p principal) id() string {
	if p.TokenID == "" {
		return BootstrapTokenID
	}
	return p.TokenID
}

// caller is the principal of a request that authenticate accepted. Every
// token the Handler accepts today is a configured admin token; stored
// tokens with roles answer their own here.
func (h *Handler) caller(*http.Request) principal {
	return principal{Role: RoleAdmin}
}

// requireAdmin returns the caller when it is an admin, else a 403.
func (h *Handler) requireAdmin(r *http.Request) (principal, error) {
	p := h.caller(r)
	if p.Role != RoleAdmin {
		return p, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "only an admin token may do this"}
	}
	return p, nil
}
