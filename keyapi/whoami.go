package keyapi

import "net/http"

// RoleAdmin is the role of the tokens configured in the Caddyfile: the
// bootstrap admin tokens, allowed everything.
const RoleAdmin = "admin"

// whoamiView is the answer to GET /vault/whoami: who the caller's token is.
// The dashboard shows admin-only buttons from it; the server still checks
// every call on its own.
type whoamiView struct {
	Role    string  `json:"role"`
	TokenID *string `json:"token_id"` // null for a configured (bootstrap) token
}

// whoami serves GET /vault/whoami. Every token the Handler accepts today is
// a configured admin token; stored tokens with roles answer their own.
func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, whoamiView{Role: RoleAdmin})
	return nil
}
