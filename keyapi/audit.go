package keyapi

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// callView is one call record as the audit API shows it. csvColumns lists
// the same fields in the same order.
type callView struct {
	CallID         string       `json:"call_id"`
	KeyID          string       `json:"key_id"`
	AgentRunLabel  string       `json:"agent_run_label"`
	Vendor         string       `json:"vendor"`
	Method         string       `json:"method"`
	Path           string       `json:"path"`
	Endpoint       string       `json:"endpoint"`
	StatusCode     int          `json:"status_code"`
	Outcome        string       `json:"outcome"`
	ReservedUSD    money.Micros `json:"reserved_usd"`
	CostUSD        money.Micros `json:"cost_usd"`
	VendorAmount   *int64       `json:"vendor_amount"`
	VendorCurrency string       `json:"vendor_currency"`
	VendorTxnID    string       `json:"vendor_txn_id"`
	IdempotencyKey string       `json:"idempotency_key"`
	ReplayOf       string       `json:"replay_of"`
	StartedAt      string       `json:"started_at"`
	FinishedAt     *string      `json:"finished_at"`
	CostState      string       `json:"cost_state"`
	// Rule is the key's rule that refused a rule_denied call, else null.
	Rule *string `json:"rule"`
	// ResolvedBy, ResolvedAt and ResolveReason are set on a call an
	// operator (token id) or the reconciler resolved.
	ResolvedBy    *string `json:"resolved_by"`
	ResolvedAt    *string `json:"resolved_at"`
	ResolveReason *string `json:"resolve_reason"`
	// Approval is the approval the call asked for or used, when it
	// needed one (approvals.go).
	Approval *callApproval `json:"approval,omitempty"`
	// Tag is what Keybrake wrote on the vendor object the call creates
	// (Stripe metadata keybrake_call_id, Resend tag keybrake_call_id): an
	// operator finds the object by it. null when the call wrote none.
	Tag *string `json:"tag"`
	// Count is how many calls the record stands for: 1, or for a refusal
	// counted per key, outcome and minute, how many there were (the record
	// is the first; finished_at is the last one's end).
	Count int64 `json:"count"`
}

func newCallView(c ledger.Call) callView {
	return callView{
		CallID:         c.CallID,
		KeyID:          c.KeyID,
		AgentRunLabel:  c.RunLabel,
		Vendor:         c.Vendor,
		Method:         c.Method,
		Path:           c.Path,
		Endpoint:       c.Endpoint,
		StatusCode:     c.StatusCode,
		Outcome:        c.Outcome,
		ReservedUSD:    c.Reserved,
		CostUSD:        c.Cost,
		VendorAmount:   c.VendorAmount,
		VendorCurrency: c.VendorCurrency,
		VendorTxnID:    c.VendorTxnID,
		IdempotencyKey: c.IdempotencyKey,
		ReplayOf:       c.ReplayOf,
		StartedAt:      formatTime(c.StartedAt),
		FinishedAt:     formatTimePtr(c.FinishedAt),
		CostState:      c.CostState,
		Rule:           optional(c.Rule),
		ResolvedBy:     optional(c.ResolvedBy),
		ResolvedAt:     formatTimePtr(c.ResolvedAt),
		ResolveReason:  optional(c.ResolveReason),
		Tag:            optional(c.Tag),
		Count:          max(c.Count, 1),
	}
}

// optional is nil for "", so an unset field is JSON null.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// callList is the JSON answer to GET /vault/audit.
type callList struct {
	Data       []callView `json:"data"`
	NextCursor *string    `json:"next_cursor"`
}

// auditParams are the query parameters of the audit's filter.
var auditParams = []string{"agent_run_label", "key_id", "vendor", "outcome", "cost_state",
	"vendor_txn_id", "since", "until", "day", "cursor"}

// audit serves GET /vault/audit, as JSON pages or, with format=csv, as one
// CSV export.
func (h *Handler) audit(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, slices.Concat(auditParams, []string{"limit", "format"})...)
	if err != nil {
		return err
	}
	f, err := h.auditFilter(r, q)
	if err != nil {
		return err
	}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		maxRows, err := limitParam(q, maxCSVRows, maxCSVRows)
		if err != nil {
			return err
		}
		return h.auditCSV(w, r, f, maxRows)
	default:
		return invalidField("format", "format must be json or csv")
	}
	if f.Limit, err = limitParam(q, defaultPageLimit, maxPageLimit); err != nil {
		return err
	}
	calls, next, err := h.store.Audit(r.Context(), f)
	if err != nil {
		return err
	}
	out := callList{Data: make([]callView, 0, len(calls)), NextCursor: nullableCursor(next)}
	for _, c := range calls {
		out.Data = append(out.Data, newCallView(c))
	}
	if err := h.attachApprovals(r, calls, out.Data); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// auditFilter reads the audit's filter from q; an issuer token must name
// one of its own keys.
func (h *Handler) auditFilter(r *http.Request, q url.Values) (ledger.AuditFilter, error) {
	var err error
	var f ledger.AuditFilter
	if f.RunLabel, err = textParam(q, "agent_run_label", maxLabelLength*4); err != nil {
		return f, err
	}
	if f.KeyID, err = textParam(q, "key_id", maxKeyIDLen); err != nil {
		return f, err
	}
	if principalOf(r).Role == RoleIssuer {
		// An issuer reads the calls of its own keys, one key at a time.
		if f.KeyID == "" {
			return f, &apiError{Status: http.StatusForbidden, Code: codeForbidden,
				Message: "an issuer token reads the audit of its own keys: give key_id"}
		}
		if _, err := h.ownKey(r, f.KeyID, h.clock(), false); err != nil {
			return f, err
		}
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"vendor", &f.Vendor}, {"outcome", &f.Outcome}, {"cost_state", &f.CostState},
		{"vendor_txn_id", &f.VendorTxnID}} {
		if *p.dst, err = textParam(q, p.name, maxFilterLength); err != nil {
			return f, err
		}
	}
	if f.Since, err = timeParam(q, "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until"); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, invalidField("until", "until must be after since")
	}
	// day is the UTC day's window, narrowed by since and until when given
	// too (it never widens them).
	day, err := dayParam(q)
	if err != nil {
		return f, err
	}
	if !day.IsZero() {
		if f.Since.Before(day) {
			f.Since = day
		}
		if end := day.AddDate(0, 0, 1); f.Until.IsZero() || f.Until.After(end) {
			f.Until = end
		}
		if !f.Until.After(f.Since) {
			return f, invalidField("day", "since and until leave nothing of day")
		}
	}
	if f.Cursor, err = textParam(q, "cursor", maxCursorLength); err != nil {
		return f, err
	}
	return f, nil
}
