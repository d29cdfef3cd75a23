package keyapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// maxReasonLength bounds a resolution's reason, in characters.
const maxReasonLength = 500

// resolveRequest is the body of POST /vault/calls/{call_id}/resolve: either
// cost_usd (what the vendor says the call cost, 0 or more) or release
// (the vendor moved no money), and a reason for the audit.
type resolveRequest struct {
	CostUSD json.RawMessage `json:"cost_usd"`
	Release bool            `json:"release"`
	Reason  string          `json:"reason"`
}

// resolveCall serves POST /vault/calls/{call_id}/resolve (admin only): an
// operator settles or releases a call the reconciler could not, recorded
// with who, when and why. It answers the call as the audit shows it.
func (h *Handler) resolveCall(w http.ResponseWriter, r *http.Request, callID string) error {
	who, err := h.requireAdmin(r)
	if err != nil {
		return err
	}
	if _, err := parseQuery(r); err != nil {
		return err
	}
	var req resolveRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	res, err := h.validateResolve(req)
	if err != nil {
		return err
	}
	if !plausibleKeyID(callID) { // call ids have the same base62 shape
		return errNotFound("no such call")
	}
	now := h.clock()
	res.By, res.Now, res.StaleBefore = who.id(), now, now.Add(-h.staleAfter)
	c, err := h.store.Resolve(r.Context(), callID, res)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return errNotFound("no such call")
	case errors.Is(err, ledger.ErrNotResolvable):
		return &apiError{Status: http.StatusConflict, Code: "call_not_resolvable",
			Message: "only a call whose cost is unknown, or a reservation older than stale_reservation_after, can be resolved"}
	case err != nil:
		return err
	}
	h.log.Info("call resolved", zap.String("call_id", c.CallID), zap.String("key_id", c.KeyID),
		zap.String("agent_run_label", c.RunLabel), zap.String("resolved_by", c.ResolvedBy),
		zap.Bool("release", res.Release), zap.String("cost_usd", c.Cost.String()),
		zap.String("reserved_usd", c.Reserved.String()), zap.String("reason", c.ResolveReason))
	writeJSON(w, http.StatusOK, newCallView(c))
	return nil
}

// validateResolve checks a resolve request: exactly one of cost_usd and
// release, and a printable reason.
func (h *Handler) validateResolve(req resolveRequest) (ledger.Resolution, error) {
	var res ledger.Resolution
	raw := bytes.TrimSpace(req.CostUSD)
	hasCost := len(raw) > 0 && string(raw) != "null"
	switch {
	case hasCost && req.Release:
		return res, invalidField("release", "give either cost_usd or release, not both")
	case !hasCost && !req.Release:
		return res, missingField("cost_usd")
	case hasCost:
		s := string(raw)
		if raw[0] == '"' {
			if err := json.Unmarshal(raw, &s); err != nil {
				return res, invalidField("cost_usd", "cost_usd must be a number of US dollars")
			}
		}
		m, err := money.ParseUSD(s)
		if err != nil || m < 0 {
			return res, invalidField("cost_usd", "cost_usd must be 0 or more US dollars with at most 6 decimals, no exponent")
		}
		res.Cost = m
	}
	res.Release = req.Release
	reason := strings.TrimSpace(req.Reason)
	switch {
	case reason == "":
		return res, missingField("reason")
	case !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReasonLength:
		return res, invalidField("reason", "reason must be valid UTF-8 of at most 500 characters")
	case strings.IndexFunc(reason, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		return res, invalidField("reason", "reason must be printable text on one line")
	}
	res.Reason = reason
	return res, nil
}
