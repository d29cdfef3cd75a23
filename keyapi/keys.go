package keyapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// createAttempts bounds retries on an (astronomically unlikely) id clash.
const createAttempts = 3

// createKey serves POST /vault/keys.
// An issuer's key must lie inside its policy, and every key records the
// stored token that issued it.
func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) error {
	if err := requireRole(r, RoleAdmin, RoleIssuer); err != nil {
		return err
	}
	var req createKeyRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	spec, err := h.validateCreate(&req)
	if err != nil {
		return err
	}
	p := principalOf(r)
	approval, err := parseApproval("approval", req.Approval)
	if err != nil {
		return err
	}
	if approval, err = approvalForKey(p.Policy, approval); err != nil {
		return err
	}
	if p.Policy != nil {
		if req.ExpiresIn == nil && p.Policy.maxTTL > 0 {
			spec.ttl = min(spec.ttl, p.Policy.maxTTL)
		}
		if err := p.Policy.checkKey(spec.vendor, spec.dailyCap, spec.totalCap, spec.ttl, spec.endpoints, spec.label); err != nil {
			return err
		}
		if err := p.Policy.withinPolicy(spec.rules); err != nil {
			return err
		}
	}
	now := h.clock()
	totalCap := perRunTotal(spec.dailyCap, spec.totalCap, now, now.Add(spec.ttl))
	for range createAttempts {
		id, secret := newKeyID(), newSecret()
		k := ledger.Key{
			ID:               id,
			Hash:             ledger.HashSecret(secret),
			Vendor:           spec.vendor,
			DailyCap:         spec.dailyCap,
			TotalCap:         totalCap,
			AllowedEndpoints: spec.endpoints,
			RunLabel:         spec.label,
			Metadata:         spec.metadata,
			CreatedAt:        now,
			ExpiresAt:        now.Add(spec.ttl),
			TokenID:          p.TokenID,
			Rules:            spec.rules,
			Approval:         approval,
		}
		err = h.store.CreateKey(r.Context(), k)
		if errors.Is(err, ledger.ErrConflict) {
			h.log.Warn("key API: key id or hash conflict; retrying", zap.String("key_id", id))
			continue
		}
		if err != nil {
			return err
		}
		h.log.Info("vault key issued",
			zap.String("key_id", id),
			zap.String("vendor", k.Vendor),
			zap.String("agent_run_label", k.RunLabel),
			zap.String("token_id", k.TokenID),
			zap.Time("expires_at", k.ExpiresAt),
			zap.Int("allowed_endpoints", len(k.AllowedEndpoints)))
		view := newKeyView(ledger.KeyUsage{Key: k}, now)
		view.VaultKey = secret
		w.Header().Set("Location", PathPrefix+"keys/"+id)
		writeJSON(w, http.StatusCreated, view)
		return nil
	}
	return fmt.Errorf("create key: %w after %d attempts", ledger.ErrConflict, createAttempts)
}

// getKey serves GET /vault/keys/{key_id}.
func (h *Handler) getKey(w http.ResponseWriter, r *http.Request, id string) error {
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if !plausibleKeyID(id) {
		return errNoKey(id)
	}
	now := h.clock()
	u, err := h.ownKey(r, id, now, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newKeyView(u, now))
	return nil
}

// ownKey reads a key the caller may see (read) or change: an issuer only
// its own, as if no other key existed (404).
func (h *Handler) ownKey(r *http.Request, id string, now time.Time, read bool) (ledger.KeyUsage, error) {
	u, err := h.store.GetKey(r.Context(), id, now)
	if errors.Is(err, ledger.ErrNotFound) {
		return ledger.KeyUsage{}, errNoKey(id)
	}
	if err != nil {
		return ledger.KeyUsage{}, err
	}
	p := principalOf(r)
	if p.owns(u.Key) || (read && (p.Role == RoleReader || p.Role == RoleApprover)) {
		return u, nil
	}
	return ledger.KeyUsage{}, errNoKey(id)
}

// keyList is the answer to GET /vault/keys.
type keyList struct {
	Data       []keyView `json:"data"`
	NextCursor *string   `json:"next_cursor"`
}

// listKeys serves GET /vault/keys.
func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, "agent_run_label", "vendor", "status", "cursor", "limit")
	if err != nil {
		return err
	}
	now := h.clock()
	f := ledger.KeyFilter{Now: now}
	if f.RunLabel, err = textParam(q, "agent_run_label", maxLabelLength*4); err != nil {
		return err
	}
	if f.Vendor, err = textParam(q, "vendor", maxFilterLength); err != nil {
		return err
	}
	switch f.Status = q.Get("status"); f.Status {
	case "", ledger.StatusActive, ledger.StatusExpired, ledger.StatusRevoked:
	default:
		return invalidField("status", "status must be one of active, expired, revoked")
	}
	if f.Cursor, err = textParam(q, "cursor", maxCursorLength); err != nil {
		return err
	}
	if f.Limit, err = limitParam(q, defaultPageLimit, maxPageLimit); err != nil {
		return err
	}
	if p := principalOf(r); p.Role == RoleIssuer {
		f.TokenID = p.TokenID
	}
	keys, next, err := h.store.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	out := keyList{Data: make([]keyView, 0, len(keys)), NextCursor: nullableCursor(next)}
	for _, u := range keys {
		out.Data = append(out.Data, newKeyView(u, now))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeKey serves DELETE /vault/keys/{key_id}. Revoking is idempotent: a
// second DELETE keeps the first revocation time. If reading the key back
// fails after the revocation, the error is answered and a retry is safe.
func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, id string) error {
	if err := requireRole(r, RoleAdmin, RoleIssuer); err != nil {
		return err
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	if !plausibleKeyID(id) {
		return errNoKey(id)
	}
	now := h.clock()
	if _, err := h.ownKey(r, id, now, false); err != nil {
		return err
	}
	k, err := h.store.RevokeKey(r.Context(), id, now)
	if errors.Is(err, ledger.ErrNotFound) {
		return errNoKey(id)
	}
	if err != nil {
		return err
	}
	if h.onRevoke != nil {
		h.onRevoke(id)
	}
	h.log.Info("vault key revoked",
		zap.String("key_id", id),
		zap.String("vendor", k.Vendor),
		zap.String("agent_run_label", k.RunLabel))
	u, err := h.store.GetKey(r.Context(), id, now)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newKeyView(u, now))
	return nil
}

// errNoKey does not echo the id: a caller may have pasted a secret there.
func errNoKey(string) error { return errNotFound("no such key") }

// perRunTotal is the lifetime cap of a new key. A key with only a daily cap
// whose life crosses a UTC midnight could otherwise spend its daily cap on
// each day it touches (twice, for a 2h key issued at 23:00): a per-run key's
// daily cap then also bounds its total. A key meant to spend its daily cap
// on each of several days says so with an explicit total_usd_cap.
func perRunTotal(daily, total *money.Micros, created, expires time.Time) *money.Micros {
	if total != nil || daily == nil {
		return total
	}
	if ledger.Day(created).Equal(ledger.Day(expires.Add(-time.Nanosecond))) {
		return nil // one UTC day: the daily cap is already the whole life's
	}
	t := *daily
	return &t
}
