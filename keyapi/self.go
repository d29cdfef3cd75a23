package keyapi

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/keybrake/keybrake/internal/authlimit"
	"github.com/keybrake/keybrake/ledger"
)

// selfView is the answer to GET /vault/self: the key as GET /vault/keys/{id}
// shows it, plus what its rules still allow, so that an agent can plan
// instead of hitting the brake.
type selfView struct {
	keyView
	// CallsLeft is max_calls less the calls counted against it; null
	// without a max_calls rule.
	CallsLeft *int64 `json:"calls_left"`
}

// self serves GET /vault/self, authenticated with the vault key itself,
// sent where the vendor's SDK sends its API key (Authorization: Bearer for
// Stripe, Resend and bearer declared vendors; Basic for Twilio; a
// declared vendor's header). Every configured vendor's way is tried.
func (h *Handler) self(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, "GET")
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	addr := authlimit.ClientAddr(r.RemoteAddr)
	if ok, wait := h.authLimit.Allow(addr, h.now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
		return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_failed_attempts",
			Message: "too many failed authentications from this address; try again later"}
	}
	key, found, err := h.keyOfRequest(r)
	if err != nil {
		return err
	}
	if !found {
		h.failedAuth(r, addr)
		return &apiError{Status: http.StatusUnauthorized, Code: "unauthorized",
			Message: "GET /vault/self takes the vault key where your vendor's SDK sends its API key (e.g. Authorization: Bearer <vault key>)"}
	}
	now := h.clock()
	u, err := h.store.GetKey(r.Context(), key.ID, now)
	if err != nil {
		return err
	}
	v := selfView{keyView: newKeyView(u, now)}
	if u.Rules != nil && u.Rules.MaxCalls != nil {
		left := max(*u.Rules.MaxCalls-u.RuleCalls, 0)
		v.CallsLeft = &left
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// keyOfRequest finds the vault key a request carries, trying each vendor's
// way of reading it.
func (h *Handler) keyOfRequest(r *http.Request) (ledger.Key, bool, error) {
	tried := map[string]bool{}
	for _, read := range h.keyReaders {
		secret, ok := read(r)
		if !ok || secret == "" || tried[secret] {
			continue
		}
		tried[secret] = true
		hash := ledger.HashSecret(secret)
		k, err := h.store.KeyByHash(r.Context(), hash)
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return ledger.Key{}, false, err
		}
		if subtle.ConstantTimeCompare(k.Hash[:], hash[:]) == 1 {
			return k, true, nil
		}
	}
	return ledger.Key{}, false, nil
}
