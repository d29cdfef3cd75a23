package keyapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/randid"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// Token ids and secrets use only [A-Za-z0-9], like key ids.
const (
	tokenIDPrefix     = "tk"
	tokenSecretPrefix = "kt"
	maxTokenName      = 100
)

// createTokenRequest is the body of POST /vault/tokens.
type createTokenRequest struct {
	Name   string         `json:"name"`
	Role   string         `json:"role"`
	Policy *policyRequest `json:"policy"`
}

// tokenView is a stored token as the API shows it. Token is set only in the
// answer to POST /vault/tokens: the secret is shown once and never stored.
type tokenView struct {
	TokenID       string       `json:"token_id"`
	Token         string       `json:"token,omitempty"`
	Name          string       `json:"name"`
	Role          string       `json:"role"`
	Policy        *policyView  `json:"policy"`
	CreatedAt     string       `json:"created_at"`
	RevokedAt     *string      `json:"revoked_at"`
	Status        string       `json:"status"`
	SpentUSD      money.Micros `json:"spent_usd"`
	ReservedUSD   money.Micros `json:"reserved_usd"`
	DailySpentUSD money.Micros `json:"daily_spent_usd"`
	// RevokedKeys lists the keys a DELETE …?revoke_keys=true revoked.
	RevokedKeys []string `json:"revoked_keys,omitempty"`
}

func newTokenView(u ledger.TokenUsage) (tokenView, error) {
	v := tokenView{
		TokenID:       u.ID,
		Name:          u.Name,
		Role:          u.Role,
		CreatedAt:     formatTime(u.CreatedAt),
		RevokedAt:     formatTimePtr(u.RevokedAt),
		Status:        ledger.StatusActive,
		SpentUSD:      u.Spent,
		ReservedUSD:   u.Reserved,
		DailySpentUSD: u.DaySpent,
	}
	if u.RevokedAt != nil {
		v.Status = ledger.StatusRevoked
	}
	p, err := decodeStoredPolicy(u.Policy)
	if err != nil {
		return tokenView{}, err
	}
	if p != nil {
		pv := p.view()
		v.Policy = &pv
	}
	return v, nil
}

// createToken serves POST /vault/tokens (admin).
func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) error {
	if err := requireRole(r, RoleAdmin); err != nil {
		return err
	}
	var req createTokenRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" {
		return missingField("name")
	}
	if len(name) > maxTokenName {
		return invalidField("name", fmt.Sprintf("name must be at most %d characters", maxTokenName))
	}
	if err := checkLabel("name", name); err != nil {
		return err
	}
	switch req.Role {
	case "":
		return missingField("role")
	case RoleAdmin, RoleIssuer, RoleReader, RoleApprover:
	default:
		return invalidField("role", "role must be one of admin, issuer, reader, approver")
	}
	var pol *policy
	if req.Policy != nil {
		if req.Role != RoleIssuer {
			return invalidField("policy", "only an issuer token has a policy")
		}
		var err error
		if pol, err = parsePolicy(*req.Policy, h.vendors); err != nil {
			return err
		}
	}
	now := h.clock()
	for range createAttempts {
		id, secret := randid.Base62(keyIDChars), randid.Base62(secretChars)
		var err error
		t := ledger.Token{
			ID:        tokenIDPrefix + id,
			Hash:      ledger.HashSecret(tokenSecretPrefix + secret),
			Name:      name,
			Role:      req.Role,
			CreatedAt: now,
		}
		if pol != nil {
			if t.Policy, err = json.Marshal(pol.view()); err != nil {
				return fmt.Errorf("encoding policy: %w", err)
			}
			t.DailyCap, t.TotalCap = pol.dailyCap, pol.totalCap
		}
		err = h.store.CreateToken(r.Context(), t)
		if errors.Is(err, ledger.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		h.log.Info("api token created", zap.String("token_id", t.ID), zap.String("role", t.Role),
			zap.String("name", t.Name), zap.String("by_token_id", principalOf(r).TokenID))
		v, err := newTokenView(ledger.TokenUsage{Token: t})
		if err != nil {
			return err
		}
		v.Token = tokenSecretPrefix + secret
		w.Header().Set("Location", PathPrefix+"tokens/"+t.ID)
		writeJSON(w, http.StatusCreated, v)
		return nil
	}
	return fmt.Errorf("create token: %w after %d attempts", ledger.ErrConflict, createAttempts)
}

// tokenList is the answer to GET /vault/tokens.
type tokenList struct {
	Data       []tokenView `json:"data"`
	NextCursor *string     `json:"next_cursor"` // always null: every token is listed
}

// listTokens serves GET /vault/tokens (admin).
func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) error {
	if err := requireRole(r, RoleAdmin); err != nil {
		return err
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	list, err := h.store.ListTokens(r.Context(), h.clock())
	if err != nil {
		return err
	}
	out := tokenList{Data: make([]tokenView, 0, len(list))}
	for _, u := range list {
		v, err := newTokenView(u)
		if err != nil {
			return err
		}
		out.Data = append(out.Data, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getToken serves GET /vault/tokens/{id} (admin).
func (h *Handler) getToken(w http.ResponseWriter, r *http.Request, id string) error {
	if err := requireRole(r, RoleAdmin); err != nil {
		return err
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if !plausibleKeyID(id) {
		return errNotFound("no such token")
	}
	u, err := h.store.GetToken(r.Context(), id, h.clock())
	if errors.Is(err, ledger.ErrNotFound) {
		return errNotFound("no such token")
	}
	if err != nil {
		return err
	}
	v, err := newTokenView(u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// revokeToken serves DELETE /vault/tokens/{id}[?revoke_keys=true] (admin).
// The token is refused from then on; with revoke_keys every key it issued
// is revoked too, else its keys run on, still within its budget.
func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request, id string) error {
	if err := requireRole(r, RoleAdmin); err != nil {
		return err
	}
	q, err := parseQuery(r, "revoke_keys")
	if err != nil {
		return err
	}
	var revokeKeys bool
	switch q.Get("revoke_keys") {
	case "", "false":
	case "true":
		revokeKeys = true
	default:
		return invalidField("revoke_keys", "revoke_keys must be true or false")
	}
	if !plausibleKeyID(id) {
		return errNotFound("no such token")
	}
	now := h.clock()
	if _, err := h.store.RevokeToken(r.Context(), id, now); errors.Is(err, ledger.ErrNotFound) {
		return errNotFound("no such token")
	} else if err != nil {
		return err
	}
	var revoked []string
	if revokeKeys {
		if revoked, err = h.revokeKeys(r, ledger.RevokeFilter{TokenID: id}, now); err != nil {
			return err
		}
	}
	h.log.Info("api token revoked", zap.String("token_id", id), zap.Int("keys_revoked", len(revoked)))
	u, err := h.store.GetToken(r.Context(), id, now)
	if err != nil {
		return err
	}
	v, err := newTokenView(u)
	if err != nil {
		return err
	}
	v.RevokedKeys = revoked
	writeJSON(w, http.StatusOK, v)
	return nil
}

// revokeKeys revokes the keys f selects and tells the key cache.
func (h *Handler) revokeKeys(r *http.Request, f ledger.RevokeFilter, now time.Time) ([]string, error) {
	ids, err := h.store.RevokeKeys(r.Context(), f, now)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if h.onRevoke != nil {
			h.onRevoke(id)
		}
	}
	return ids, nil
}
