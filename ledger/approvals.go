package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/keybrake/keybrake/money"
)

// ErrNotPending: DecideApproval on an approval already decided, consumed
// or expired. Nothing changed.
var ErrNotPending = errors.New("approval is not pending")

// Approval statuses. Expired is never stored: a pending or approved
// approval past its ExpiresAt reads as expired.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
	ApprovalConsumed = "consumed"
)

// RoleApprover is the role of an API token that decides approvals (and
// reads them); it cannot issue keys.
const RoleApprover = "approver"

// Outcomes of calls refused for their approval (recorded on the call by
// the release of its reservation).
const (
	OutcomeApprovalDenied  = "approval_denied"
	OutcomeApprovalPending = "approval_pending"
)

// Approval defaults and bounds (DESIGN.md, "Approvals").
const (
	DefaultApprovalWait = 30 * time.Second
	MaxApprovalWait     = 60 * time.Second
	DefaultApprovalTTL  = time.Hour
)

// ApprovalRule makes a person decide a key's calls estimated above Above:
// the call is held up to Wait for the decision, and a decision stays
// usable by one retry of the same request until TTL after it was asked.
type ApprovalRule struct {
	Above money.Micros  `json:"above_usd"`
	Wait  time.Duration `json:"wait_ns"`
	TTL   time.Duration `json:"ttl_ns"`
}

// Needs tells whether a call of this estimate needs an approval.
func (r *ApprovalRule) Needs(estimate money.Micros) bool {
	return r != nil && estimate > r.Above
}

// EncodeApprovalRule is how backends store a rule: JSON, or "" for none.
func EncodeApprovalRule(r *ApprovalRule) string {
	if r == nil {
		return ""
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// DecodeApprovalRule reads a stored rule; "" is none. A rule that does not
// parse is kept as the strictest one (every priced call asks), so a
// damaged row never lets money through unasked.
func DecodeApprovalRule(s string) *ApprovalRule {
	if s == "" {
		return nil
	}
	var r ApprovalRule
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return &ApprovalRule{Wait: DefaultApprovalWait, TTL: DefaultApprovalTTL}
	}
	return &r
}

// Approval is one call held for a person's decision, and the decision.
type Approval struct {
	ID       string // "ap" + base62
	KeyID    string
	TokenID  string // the API token that issued the key: it may not decide
	RunLabel string
	Vendor   string
	Method   string
	Path     string
	Endpoint string
	// Subjects says what the call acts on, as far as the request tells
	// (the vendor's estimate description).
	Subjects string
	Estimate money.Micros
	// RequestHash identifies the request: see RequestHash.
	RequestHash string
	// CallID is the call that asked.
	CallID string
	Status string
	// DecidedBy is the API token id (or "bootstrap") that decided; Reason
	// is theirs.
	DecidedBy   string
	Reason      string
	DecidedAt   *time.Time
	RequestedAt time.Time
	ExpiresAt   time.Time
	// ConsumedBy is the call the approval let through.
	ConsumedBy string
	ConsumedAt *time.Time
}

// StatusAt is the approval's status at now: a pending or approved one past
// its expiry is expired.
func (a *Approval) StatusAt(now time.Time) string {
	if (a.Status == ApprovalPending || a.Status == ApprovalApproved) && !now.Before(a.ExpiresAt) {
		return ApprovalExpired
	}
	return a.Status
}

// RequestHash identifies a request for its approval: method, canonical
// path and the SHA-256 of its body.
func RequestHash(method, path string, body []byte) string {
	b := sha256.Sum256(body)
	h := sha256.Sum256([]byte(method + "\n" + path + "\n" + hex.EncodeToString(b[:])))
	return hex.EncodeToString(h[:])
}

// ApprovalDecision is a person's answer to a pending approval.
type ApprovalDecision struct {
	Approve bool
	By      string
	Reason  string
	Now     time.Time
}

// ApprovalFilter selects approvals for ListApprovals.
type ApprovalFilter struct {
	Status string // "" for all; expired as StatusAt tells it
	KeyID  string
	Now    time.Time
	Limit  int // as PageLimit reads it
}

// ApprovalStore keeps approvals. Both backends implement it; the gate and
// the key API use it when the Store is one.
type ApprovalStore interface {
	// CreateApproval records a pending approval, durably.
	CreateApproval(ctx context.Context, a Approval) error
	// GetApproval returns one. ErrNotFound if none.
	GetApproval(ctx context.Context, id string) (Approval, error)
	// ListApprovals lists approvals newest first.
	ListApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error)
	// DecideApproval approves or denies a pending, unexpired approval and
	// wakes whoever waits for it (WatchApprovals, on every node).
	// ErrNotFound if none; ErrNotPending, changing nothing, otherwise.
	DecideApproval(ctx context.Context, id string, d ApprovalDecision) (Approval, error)
	// ConsumeApproval marks consumed by callID one approved, unconsumed,
	// unexpired approval of keyID, while the key is neither revoked nor
	// expired, for requestHash (the one named id, when
	// id is set), in one atomic step: of any number of calls racing for
	// it, on any number of nodes, exactly one gets it. ErrNotFound when
	// there is none to consume.
	ConsumeApproval(ctx context.Context, id, keyID, requestHash, callID string, now time.Time) (Approval, error)
	// ApprovalsOfCalls returns the approvals asked by (CallID) or consumed
	// by (ConsumedBy) the given calls, for the audit.
	ApprovalsOfCalls(ctx context.Context, callIDs []string) ([]Approval, error)
	// WatchApprovals calls onDecided with the id of each approval decided
	// (on any node sharing the store), until ctx is done; then it returns
	// ctx.Err(). After a lost connection it calls onDecided("*"): every
	// waiter should look again.
	WatchApprovals(ctx context.Context, onDecided func(id string)) error
}

// ApprovalBroadcast tells the in-process watchers of a store of each
// decision: all a one-node ledger needs. The zero value is ready.
type ApprovalBroadcast struct {
	mu       sync.Mutex
	next     int
	watchers map[int]func(string)
}

// Watch calls fn with each id Decided announces until ctx is done, then
// returns ctx.Err().
func (b *ApprovalBroadcast) Watch(ctx context.Context, fn func(string)) error {
	b.mu.Lock()
	if b.watchers == nil {
		b.watchers = map[int]func(string){}
	}
	b.next++
	n := b.next
	b.watchers[n] = fn
	b.mu.Unlock()
	<-ctx.Done()
	b.mu.Lock()
	delete(b.watchers, n)
	b.mu.Unlock()
	return ctx.Err()
}

// Decided announces a decision to every watcher.
func (b *ApprovalBroadcast) Decided(id string) {
	b.mu.Lock()
	fns := make([]func(string), 0, len(b.watchers))
	for _, fn := range b.watchers {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(id)
	}
}
