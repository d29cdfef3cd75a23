package keyapi

import "net/http"

// whoamiView is the answer to GET /vault/whoami: who the caller's token is.
// The dashboard shows admin-only buttons from it; the server still checks
// every call on its own.
type whoamiView struct {
	Role    string      `json:"role"`
	TokenID *string     `json:"token_id"` // null for a configured (bootstrap) token
	Policy  *policyView `json:"policy"`   // an issuer's policy; null for none
}

// whoami serves GET /vault/whoami, to every role.
func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	p := principalOf(r)
	v := whoamiView{Role: p.Role}
	if p.TokenID != "" {
		v.TokenID = &p.TokenID
	}
	if p.Policy != nil {
		pv := p.Policy.view()
		v.Policy = &pv
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
