package keyapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/ledger"
)

// patchKeyRequest is the body of PATCH /vault/keys/{key_id}: absent fields
// are left as they are.
type patchKeyRequest struct {
	DailyUSDCap      json.RawMessage `json:"daily_usd_cap"`
	TotalUSDCap      json.RawMessage `json:"total_usd_cap"`
	ExpiresIn        *string         `json:"expires_in"`
	AllowedEndpoints []string        `json:"allowed_endpoints"`
	// Rules replace the key's rules: narrower only, unless an admin
	// widens them; {} (or null) removes them, which only an admin may.
	Rules json.RawMessage `json:"rules"`
	// Approval replaces the key's approval rule: stricter only (a lower
	// above_usd, a shorter ttl; wait is free within its bounds), unless an
	// admin relaxes it; {} (or null) removes it, which only an admin may.
	Approval json.RawMessage `json:"approval"`
}

// patchKey serves PATCH /vault/keys/{key_id}: new caps, a new expiry (from
// now) or a narrower allowlist, within the caller's policy. The ledger
// tells every node, so the next call anywhere sees the change.
func (h *Handler) patchKey(w http.ResponseWriter, r *http.Request, id string) error {
	if err := requireRole(r, RoleAdmin, RoleIssuer); err != nil {
		return err
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	var req patchKeyRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if !plausibleKeyID(id) {
		return errNoKey(id)
	}
	now := h.clock()
	cur, err := h.ownKey(r, id, now, false)
	if err != nil {
		return err
	}
	if cur.RevokedAt != nil {
		return &apiError{Status: http.StatusConflict, Code: "key_revoked", Message: "a revoked key cannot be changed"}
	}
	if !cur.ExpiresAt.After(now) {
		// An expired key stays expired: a new expires_in would revive a
		// key whose run is over, and nothing else is worth changing.
		return &apiError{Status: http.StatusConflict, Code: "key_expired", Message: "an expired key cannot be changed; issue a new one"}
	}
	var p ledger.KeyPatch
	if p.DailyCap, err = parseCap("daily_usd_cap", req.DailyUSDCap); err != nil {
		return err
	}
	if p.TotalCap, err = parseCap("total_usd_cap", req.TotalUSDCap); err != nil {
		return err
	}
	ttl := cur.ExpiresAt.Sub(now)
	if req.ExpiresIn != nil {
		d, err := parseDuration(*req.ExpiresIn)
		switch {
		case err != nil:
			return invalidField("expires_in", `expires_in must be a duration such as "30m", "2h" or "1d"`)
		case d <= 0:
			return invalidField("expires_in", "expires_in must be greater than 0")
		case d > h.maxTTL:
			return invalidField("expires_in", fmt.Sprintf("expires_in must be at most %s", h.maxTTL))
		}
		ttl = d
		at := now.Add(d)
		p.ExpiresAt = &at
	}
	endpoints := cur.AllowedEndpoints
	if req.AllowedEndpoints != nil {
		if endpoints, err = narrower(cur.AllowedEndpoints, req.AllowedEndpoints); err != nil {
			return err
		}
		p.AllowedEndpoints = endpoints
	}
	if req.Rules != nil {
		if p.Rules, err = h.patchRules(r, cur, req.Rules); err != nil {
			return err
		}
	}
	if req.Approval != nil {
		if p.Approval, p.RemoveApproval, err = patchApproval(r, cur.Approval, req.Approval); err != nil {
			return err
		}
	}
	if p.DailyCap == nil && p.TotalCap == nil && p.ExpiresAt == nil && p.AllowedEndpoints == nil && p.Rules == nil &&
		p.Approval == nil && !p.RemoveApproval {
		return &apiError{Status: http.StatusBadRequest, Code: codeParameterMissing,
			Message: "nothing to change: give daily_usd_cap, total_usd_cap, expires_in, allowed_endpoints, rules or approval"}
	}
	daily, total := cur.DailyCap, cur.TotalCap
	if p.DailyCap != nil {
		daily = p.DailyCap
	}
	if p.TotalCap != nil {
		total = p.TotalCap
	}
	expires := cur.ExpiresAt
	if p.ExpiresAt != nil {
		expires = *p.ExpiresAt
	}
	if t := perRunTotal(daily, total, cur.CreatedAt, expires); total == nil && t != nil {
		// The same rule as at issue: a new expiry or a new daily cap that
		// makes a daily-only key's life cross a UTC midnight bounds its
		// total by the daily cap.
		p.TotalCap, total = t, t
	}
	if pol := principalOf(r).Policy; pol != nil {
		if life := expires.Sub(cur.CreatedAt); req.ExpiresIn != nil && pol.maxTTL > 0 && life > pol.maxTTL {
			// max_ttl bounds a key's whole life, not each PATCH: repeated
			// PATCHes must not keep it alive past creation + max_ttl.
			return violation("expires_in", "expires_in %s would make the key live %s from its issue, above this token's max_ttl %s",
				*req.ExpiresIn, life.Round(time.Second), pol.maxTTLRaw)
		}
		if req.ExpiresIn == nil {
			ttl = 0 // the expiry is not changed: nothing to bound
		}
		if err := pol.checkKey(cur.Vendor, daily, total, ttl, endpoints, cur.RunLabel); err != nil {
			return err
		}
	}
	if _, err := h.store.PatchKey(r.Context(), id, p); errors.Is(err, ledger.ErrNotFound) {
		return errNoKey(id)
	} else if err != nil {
		return err
	}
	if h.onRevoke != nil {
		h.onRevoke(id) // the local key cache; other nodes hear it from the ledger
	}
	h.log.Info("vault key changed", zap.String("key_id", id), zap.String("agent_run_label", cur.RunLabel),
		zap.String("by_token_id", principalOf(r).TokenID))
	u, err := h.store.GetKey(r.Context(), id, now)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newKeyView(u, now))
	return nil
}

// narrower checks a new allowlist lies inside the current one, pattern by
// pattern, and returns it normalised.
func narrower(current, next []string) ([]string, error) {
	if len(next) > allowlist.MaxEntries {
		return nil, invalidField("allowed_endpoints", fmt.Sprintf("allowed_endpoints has more than %d entries", allowlist.MaxEntries))
	}
	// An entry of the stored allowlist that no longer parses covers
	// nothing: the gate does not match it either.
	cur, _ := allowlist.Compile(current)
	out := make([]string, 0, len(next))
	for i, e := range next {
		field := fmt.Sprintf("allowed_endpoints[%d]", i)
		norm, err := allowlist.Normalize(e)
		if err != nil {
			return nil, invalidField(field, field+": "+err.Error())
		}
		if !cur.Covers(norm) {
			return nil, invalidField(field, fmt.Sprintf("%s %q is not inside the key's allowlist: PATCH only narrows it", field, norm))
		}
		out = append(out, norm)
	}
	return out, nil
}

// runRevocation is the answer to DELETE /vault/keys?agent_run_label=….
type runRevocation struct {
	AgentRunLabel string   `json:"agent_run_label"`
	Revoked       []string `json:"revoked"`
}

// revokeRun serves DELETE /vault/keys?agent_run_label=…: every key of the
// run is revoked at once (an issuer's: those it issued).
func (h *Handler) revokeRun(w http.ResponseWriter, r *http.Request) error {
	if err := requireRole(r, RoleAdmin, RoleIssuer); err != nil {
		return err
	}
	q, err := parseQuery(r, "agent_run_label")
	if err != nil {
		return err
	}
	label, err := textParam(q, "agent_run_label", maxLabelLength*4)
	if err != nil {
		return err
	}
	if label == "" {
		return missingField("agent_run_label")
	}
	f := ledger.RevokeFilter{RunLabel: label}
	if p := principalOf(r); p.Role == RoleIssuer {
		f.TokenID = p.TokenID
	}
	ids, err := h.revokeKeys(r, f, h.clock())
	if err != nil {
		return err
	}
	h.log.Info("run revoked", zap.String("agent_run_label", label), zap.Int("keys_revoked", len(ids)))
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, runRevocation{AgentRunLabel: label, Revoked: ids})
	return nil
}
