package alerts

import (
	"context"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// Approval event types.
const (
	EventApprovalRequested = "approval.requested"
	EventApprovalDecided   = "approval.decided"
	EventApprovalExpired   = "approval.expired"
)

// ApprovalData is the data of the approval.* events.
type ApprovalData struct {
	ApprovalID  string       `json:"approval_id"`
	Status      string       `json:"status"`
	KeyID       string       `json:"key_id"`
	RunLabel    string       `json:"agent_run_label"`
	Vendor      string       `json:"vendor"`
	Method      string       `json:"method"`
	Path        string       `json:"path"`
	Subjects    string       `json:"subjects,omitempty"`
	EstimateUSD money.Micros `json:"estimate_usd"`
	CallID      string       `json:"call_id"`
	RequestedAt time.Time    `json:"requested_at"`
	ExpiresAt   time.Time    `json:"expires_at"`
	DecidedBy   string       `json:"decided_by,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	DecidedAt   *time.Time   `json:"decided_at,omitempty"`
	// URL is the dashboard, where the approval is decided.
	URL string `json:"url"`
}

// DashboardPath is the dashboard's page; an Alerter's DashboardURL, when
// set, is the absolute address of it.
const DashboardPath = "/vault/ui/"

func (a *Alerter) approvalData(ap ledger.Approval, now time.Time) ApprovalData {
	base := a.DashboardURL
	if base == "" {
		base = DashboardPath
	}
	return ApprovalData{
		ApprovalID: ap.ID, Status: ap.StatusAt(now), KeyID: ap.KeyID, RunLabel: ap.RunLabel, Vendor: ap.Vendor,
		Method: ap.Method, Path: ap.Path, Subjects: ap.Subjects, EstimateUSD: ap.Estimate, CallID: ap.CallID,
		RequestedAt: ap.RequestedAt.UTC(), ExpiresAt: ap.ExpiresAt.UTC(), DecidedBy: ap.DecidedBy, Reason: ap.Reason,
		DecidedAt: ap.DecidedAt, URL: base + "#approvals",
	}
}

// ApprovalRequested enqueues approval.requested: a call waits for a
// person.
func (a *Alerter) ApprovalRequested(ctx context.Context, ap ledger.Approval, now time.Time) {
	if !a.active() {
		return
	}
	a.each(ctx, EventApprovalRequested, EventApprovalRequested+":"+ap.ID, now, a.approvalData(ap, now))
}

// ApprovalDecided enqueues approval.decided.
func (a *Alerter) ApprovalDecided(ctx context.Context, ap ledger.Approval, now time.Time) {
	if !a.active() {
		return
	}
	a.each(ctx, EventApprovalDecided, EventApprovalDecided+":"+ap.ID, now, a.approvalData(ap, now))
}

// ApprovalExpired enqueues approval.expired, once per approval.
func (a *Alerter) ApprovalExpired(ctx context.Context, ap ledger.Approval, now time.Time) {
	if !a.active() {
		return
	}
	a.each(ctx, EventApprovalExpired, EventApprovalExpired+":"+ap.ID, now, a.approvalData(ap, now))
}
