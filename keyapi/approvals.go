package keyapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// RoleApprover decides approvals and reads them; it cannot issue keys.
const RoleApprover = ledger.RoleApprover

// approvalRequest is the approval rule as a key (or a policy) takes it:
// {"above_usd": 50, "wait": "30s", "ttl": "1h"}.
type approvalRequest struct {
	AboveUSD rawNumber `json:"above_usd"`
	Wait     *string   `json:"wait"`
	TTL      *string   `json:"ttl"`
}

// approvalRuleView is a rule as the API shows it.
type approvalRuleView struct {
	AboveUSD money.Micros `json:"above_usd"`
	Wait     string       `json:"wait"`
	TTL      string       `json:"ttl"`
}

func newApprovalRuleView(r *ledger.ApprovalRule) *approvalRuleView {
	if r == nil {
		return nil
	}
	return &approvalRuleView{AboveUSD: r.Above, Wait: r.Wait.String(), TTL: r.TTL.String()}
}

// parseApproval validates a rule: above_usd required (0 means every priced
// call asks), wait from 1s to 60s (default 30s), ttl positive, at most
// 7 days (default 1h). nil stays nil.
func parseApproval(field string, req *approvalRequest) (*ledger.ApprovalRule, error) {
	if req == nil {
		return nil, nil
	}
	if len(req.AboveUSD) == 0 {
		return nil, missingField(field + ".above_usd")
	}
	rule := &ledger.ApprovalRule{Wait: ledger.DefaultApprovalWait, TTL: ledger.DefaultApprovalTTL}
	switch raw := strings.TrimSpace(string(req.AboveUSD)); raw {
	case "0", `"0"`:
		rule.Above = 0 // every call that costs anything asks
	default:
		above, err := parseCap(field+".above_usd", []byte(raw))
		if err != nil {
			return nil, err
		}
		if above == nil {
			return nil, missingField(field + ".above_usd")
		}
		rule.Above = *above
	}
	if req.Wait != nil {
		d, err := parseDuration(*req.Wait)
		if err != nil || d < time.Second || d > ledger.MaxApprovalWait {
			return nil, invalidField(field+".wait", fmt.Sprintf(`%s.wait must be a duration from "1s" to "%s"`, field, ledger.MaxApprovalWait))
		}
		rule.Wait = d
	}
	if req.TTL != nil {
		d, err := parseDuration(*req.TTL)
		if err != nil || d < time.Second || d > 7*24*time.Hour {
			return nil, invalidField(field+".ttl", field+`.ttl must be a duration from "1s" to "7d"`)
		}
		rule.TTL = d
	}
	return rule, nil
}

// rawNumber keeps a JSON number (or numeric string) as written, so money
// is parsed exactly.
type rawNumber []byte

func (n *rawNumber) UnmarshalJSON(b []byte) error {
	*n = append((*n)[:0], b...)
	return nil
}

// approvalForKey is the rule a new key gets under policy pol: the key's
// own, which may only be stricter than the policy's (a threshold no
// higher, a decision usable no longer), or the policy's when the key names
// none.
func approvalForKey(pol *policy, rule *ledger.ApprovalRule) (*ledger.ApprovalRule, error) {
	if pol == nil || pol.approval == nil {
		return rule, nil
	}
	if rule == nil {
		r := *pol.approval
		return &r, nil
	}
	if rule.Above > pol.approval.Above {
		return nil, violation("approval.above_usd", "approval.above_usd %s is above this token's policy approval.above_usd %s",
			rule.Above.Dollars(), pol.approval.Above.Dollars())
	}
	if rule.TTL > pol.approval.TTL {
		return nil, violation("approval.ttl", "approval.ttl %s is longer than this token's policy approval.ttl %s",
			rule.TTL, pol.approval.TTL)
	}
	return rule, nil
}

// patchApproval reads the approval of a PATCH: the new rule, or that the
// key's is to be removed ({} or null). Only an admin may relax the key's
// rule (a higher above_usd, a longer ttl) or remove it; the caller's policy
// bounds the new rule as it bounds one at issue.
func patchApproval(r *http.Request, cur *ledger.ApprovalRule, raw json.RawMessage) (*ledger.ApprovalRule, bool, error) {
	p := principalOf(r)
	if t := bytes.TrimSpace(raw); bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte("{}")) {
		if cur != nil && p.Role != RoleAdmin {
			return nil, false, violation("approval", "removing the key's approval rule would widen it: PATCH only makes it stricter (an admin may remove it)")
		}
		if p.Policy != nil && p.Policy.approval != nil {
			return nil, false, violation("approval", "this token's policy requires an approval rule on its keys")
		}
		return nil, true, nil
	}
	var req approvalRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, false, invalidField("approval", `approval must be an object such as {"above_usd": 50, "wait": "30s", "ttl": "1h"}, or {} to remove it`)
	}
	next, err := parseApproval("approval", &req)
	if err != nil {
		return nil, false, err
	}
	if cur != nil && p.Role != RoleAdmin {
		if next.Above > cur.Above {
			return nil, false, violation("approval.above_usd", "approval.above_usd %s is above the key's %s: PATCH only makes the rule stricter (an admin may relax it)",
				next.Above.Dollars(), cur.Above.Dollars())
		}
		if next.TTL > cur.TTL {
			return nil, false, violation("approval.ttl", "approval.ttl %s is longer than the key's %s: PATCH only makes the rule stricter (an admin may relax it)",
				next.TTL, cur.TTL)
		}
	}
	if next, err = approvalForKey(p.Policy, next); err != nil {
		return nil, false, err
	}
	return next, false, nil
}

// approvalView is an approval as the API shows it.
type approvalView struct {
	ApprovalID    string       `json:"approval_id"`
	Status        string       `json:"status"`
	KeyID         string       `json:"key_id"`
	AgentRunLabel string       `json:"agent_run_label"`
	Vendor        string       `json:"vendor"`
	Method        string       `json:"method"`
	Path          string       `json:"path"`
	Endpoint      string       `json:"endpoint"`
	Subjects      string       `json:"subjects"`
	EstimateUSD   money.Micros `json:"estimate_usd"`
	CallID        string       `json:"call_id"`
	RequestedAt   string       `json:"requested_at"`
	ExpiresAt     string       `json:"expires_at"`
	DecidedBy     *string      `json:"decided_by"`
	Reason        string       `json:"reason"`
	DecidedAt     *string      `json:"decided_at"`
	// DecidedAfterMS is how long the call waited for its decision.
	DecidedAfterMS *int64  `json:"decided_after_ms"`
	ConsumedBy     *string `json:"consumed_by"`
	ConsumedAt     *string `json:"consumed_at"`
}

func newApprovalView(a ledger.Approval, now time.Time) approvalView {
	v := approvalView{
		ApprovalID: a.ID, Status: a.StatusAt(now), KeyID: a.KeyID, AgentRunLabel: a.RunLabel, Vendor: a.Vendor,
		Method: a.Method, Path: a.Path, Endpoint: a.Endpoint, Subjects: a.Subjects, EstimateUSD: a.Estimate,
		CallID: a.CallID, RequestedAt: formatTime(a.RequestedAt), ExpiresAt: formatTime(a.ExpiresAt),
		Reason: a.Reason, DecidedAt: formatTimePtr(a.DecidedAt), ConsumedAt: formatTimePtr(a.ConsumedAt),
	}
	if a.DecidedBy != "" {
		v.DecidedBy = &a.DecidedBy
	}
	if a.DecidedAt != nil {
		ms := a.DecidedAt.Sub(a.RequestedAt).Milliseconds()
		v.DecidedAfterMS = &ms
	}
	if a.ConsumedBy != "" {
		v.ConsumedBy = &a.ConsumedBy
	}
	return v
}

// routeApprovals serves /vault/approvals and /vault/approvals/{id}[/approve|/deny].
// An issuer reads the approvals of its own keys only (to learn when a
// refused call may be sent again), and decides none.
func (h *Handler) routeApprovals(w http.ResponseWriter, r *http.Request, rest string) error {
	store, ok := h.store.(ledger.ApprovalStore)
	if !ok {
		return errNotFound("this ledger keeps no approvals")
	}
	if err := requireRole(r, RoleAdmin, RoleApprover, RoleReader, RoleIssuer); err != nil {
		return err
	}
	parts := strings.Split(rest, "/")
	switch {
	case rest == "":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		return h.listApprovals(w, r, store)
	case !plausibleKeyID(parts[0]):
		return errNotFound("no approval " + parts[0])
	case len(parts) == 1:
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, "GET")
		}
		a, err := store.GetApproval(r.Context(), parts[0])
		if p := principalOf(r); errors.Is(err, ledger.ErrNotFound) || (err == nil && p.Role == RoleIssuer && a.TokenID != p.TokenID) {
			return errNotFound("no approval " + parts[0])
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, newApprovalView(a, h.clock()))
		return nil
	case len(parts) == 2 && (parts[1] == "approve" || parts[1] == "deny"):
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, "POST")
		}
		return h.decideApproval(w, r, store, parts[0], parts[1] == "approve")
	}
	return errNotFound("no such endpoint")
}

// listApprovals serves GET /vault/approvals?status=&key_id=&limit=.
func (h *Handler) listApprovals(w http.ResponseWriter, r *http.Request, store ledger.ApprovalStore) error {
	q, err := parseQuery(r, "status", "key_id", "limit")
	if err != nil {
		return err
	}
	status := q.Get("status")
	switch status {
	case "", ledger.ApprovalPending, ledger.ApprovalApproved, ledger.ApprovalDenied, ledger.ApprovalExpired, ledger.ApprovalConsumed:
	default:
		return invalidField("status", "status must be one of pending, approved, denied, expired, consumed")
	}
	limit, err := limitParam(q, ledger.DefaultPageLimit, ledger.MaxPageLimit)
	if err != nil {
		return err
	}
	if principalOf(r).Role == RoleIssuer {
		// An issuer lists the approvals of one of its own keys.
		if q.Get("key_id") == "" {
			return &apiError{Status: http.StatusForbidden, Code: codeForbidden,
				Message: "an issuer token reads the approvals of its own keys: give key_id"}
		}
		if _, err := h.ownKey(r, q.Get("key_id"), h.clock(), false); err != nil {
			return err
		}
	}
	now := h.clock()
	list, err := store.ListApprovals(r.Context(), ledger.ApprovalFilter{Status: status, KeyID: q.Get("key_id"), Now: now, Limit: limit})
	if err != nil {
		return err
	}
	views := make([]approvalView, 0, len(list))
	for _, a := range list {
		views = append(views, newApprovalView(a, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": views})
	return nil
}

// decisionRequest is the body of POST /vault/approvals/{id}/approve|deny.
type decisionRequest struct {
	Reason string `json:"reason"`
}

// decideApproval serves POST /vault/approvals/{id}/approve|deny: by an
// admin or an approver, never by the token that issued the key (the run
// does not approve itself).
func (h *Handler) decideApproval(w http.ResponseWriter, r *http.Request, store ledger.ApprovalStore, id string, approve bool) error {
	if err := requireRole(r, RoleAdmin, RoleApprover); err != nil {
		return err
	}
	var req decisionRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
	}
	if !utf8.ValidString(req.Reason) || utf8.RuneCountInString(req.Reason) > maxReasonLength {
		return invalidField("reason", fmt.Sprintf("reason must be valid UTF-8, at most %d characters", maxReasonLength))
	}
	a, err := store.GetApproval(r.Context(), id)
	if errors.Is(err, ledger.ErrNotFound) {
		return errNotFound("no approval " + id)
	}
	if err != nil {
		return err
	}
	p := principalOf(r)
	issuer := a.TokenID
	if issuer == "" {
		issuer = BootstrapTokenID
	}
	if p.id() == issuer {
		return &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: "the API token that issued this key may not decide its approvals: another admin or an approver must"}
	}
	now := h.clock()
	decided, err := store.DecideApproval(r.Context(), id, ledger.ApprovalDecision{Approve: approve, By: p.id(), Reason: req.Reason, Now: now})
	if errors.Is(err, ledger.ErrNotPending) {
		return &apiError{Status: http.StatusConflict, Code: "approval_not_pending",
			Message: "approval " + id + " is " + a.StatusAt(now) + ", not pending: it cannot be decided again"}
	}
	if err != nil {
		return err
	}
	h.log.Info("approval decided", zap.String("approval_id", id), zap.String("status", decided.Status),
		zap.String("decided_by", decided.DecidedBy), zap.String("key_id", decided.KeyID),
		zap.Duration("waited", now.Sub(decided.RequestedAt)))
	if h.onDecided != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		h.onDecided(ctx, decided)
		cancel()
	}
	writeJSON(w, http.StatusOK, newApprovalView(decided, now))
	return nil
}

// approvalRequestOf is a rule in the form a policy stores it (read back
// by parseApproval).
func approvalRequestOf(r *ledger.ApprovalRule) *approvalRequest {
	if r == nil {
		return nil
	}
	above, _ := r.Above.MarshalJSON()
	wait, ttl := r.Wait.String(), r.TTL.String()
	return &approvalRequest{AboveUSD: above, Wait: &wait, TTL: &ttl}
}

// MarshalJSON writes the number as it was given.
func (n rawNumber) MarshalJSON() ([]byte, error) {
	if len(n) == 0 {
		return []byte("null"), nil
	}
	return n, nil
}

// callApproval is, on an audited call, the approval it asked for or used:
// who decided, when, why, and how long the call was held for it.
type callApproval struct {
	ApprovalID string  `json:"approval_id"`
	Status     string  `json:"status"`
	DecidedBy  *string `json:"decided_by"`
	DecidedAt  *string `json:"decided_at"`
	Reason     string  `json:"reason"`
	// HeldMS is how long this call waited for the decision: 0 for a
	// retry that used an approval decided after its first attempt.
	HeldMS int64 `json:"held_ms"`
}

// attachApprovals sets Approval on the views of the calls that asked for
// or used one.
func (h *Handler) attachApprovals(r *http.Request, calls []ledger.Call, views []callView) error {
	store, ok := h.store.(ledger.ApprovalStore)
	if !ok || len(calls) == 0 {
		return nil
	}
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.CallID
	}
	approvals, err := store.ApprovalsOfCalls(r.Context(), ids)
	if err != nil || len(approvals) == 0 {
		return err
	}
	byCall := map[string]*ledger.Approval{}
	for i := range approvals {
		a := &approvals[i]
		byCall[a.CallID] = a
		if a.ConsumedBy != "" && a.ConsumedBy != a.CallID {
			byCall[a.ConsumedBy] = a
		}
	}
	now := h.clock()
	for i, c := range calls {
		a := byCall[c.CallID]
		if a == nil {
			continue
		}
		ca := &callApproval{ApprovalID: a.ID, Status: a.StatusAt(now), DecidedBy: optional(a.DecidedBy),
			DecidedAt: formatTimePtr(a.DecidedAt), Reason: a.Reason}
		if a.CallID == c.CallID {
			// Held from the request until the decision it used, or until
			// it was answered without one.
			end := now
			switch {
			case a.ConsumedBy == c.CallID && a.ConsumedAt != nil:
				end = *a.ConsumedAt
			case c.FinishedAt != nil:
				end = *c.FinishedAt
			}
			if a.DecidedAt != nil && a.DecidedAt.Before(end) {
				end = *a.DecidedAt
			}
			ca.HeldMS = max(end.Sub(a.RequestedAt).Milliseconds(), 0)
		}
		views[i].Approval = ca
	}
	return nil
}
