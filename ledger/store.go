// Package ledger keeps Keybrake's vault keys, reservations and call records.
//
// A Store is the single source of truth for spend. Every backend (Postgres for
// a fleet, in ledger/postgres; embedded SQLite for one node, in ledger/sqlite)
// registers itself with Open and implements the same contract, tested by the
// shared suite in ledger/ledgertest:
//
//   - Reserve is atomic: it checks that the key exists, belongs to the vendor,
//     is not revoked or expired, and that spent + reserved + estimate stays
//     within both the daily (UTC day) and the lifetime cap; then it adds the
//     reservation and writes the call record, all or nothing. No cap is ever
//     exceeded, whatever the concurrency and however many nodes share the
//     store.
//   - The call record is durable before Reserve returns, so it exists before
//     the vendor is called.
//   - Keys are stored by the SHA-256 of their secret only.
package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
)

// Errors returned by a Store. Backends wrap their driver errors; callers test
// with errors.Is.
var (
	// ErrNotFound: no key (or call) with that id or hash.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the store cannot be reached. The gate fails closed on it.
	ErrUnavailable = errors.New("ledger unavailable")
	// ErrConflict: a key id or hash that already exists.
	ErrConflict = errors.New("conflict")
	// ErrNotResolvable: Resolve on a call that is neither unknown nor a
	// stale reservation.
	ErrNotResolvable = errors.New("call is not unresolved")
)

// Key statuses.
const (
	StatusActive  = "active"
	StatusExpired = "expired"
	StatusRevoked = "revoked"
)

// Call outcomes. A refused call is recorded with the outcome that refused it.
const (
	OutcomeForwarded        = "forwarded"
	OutcomeIdempotentReplay = "idempotent_replay"
	// The vendor's idempotency key reused with another request, or while
	// its original is still in flight: refused before forwarding.
	OutcomeIdempotencyMismatch = "idempotency_mismatch"
	OutcomeIdempotencyInFlight = "idempotency_in_flight"
	OutcomeCapHit              = "cap_hit"
	// OutcomeBudgetHit: the key's own caps had room, but the budget of the
	// API token that issued it (its daily or total cap over all its keys)
	// did not.
	OutcomeBudgetHit       = "budget_hit"
	OutcomeRevoked         = "revoked"
	OutcomeExpired         = "expired"
	OutcomeWrongVendor     = "wrong_vendor"
	OutcomeEndpointDenied  = "endpoint_denied"
	OutcomeUnknownCost     = "unknown_cost_denied"
	OutcomeBadRequest      = "bad_request"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeUpstreamError   = "upstream_error"
	// The upstream could not be connected to: nothing was sent, the
	// reservation was released.
	OutcomeUpstreamUnreachable = "upstream_unreachable"
	OutcomeClientGone          = "client_gone" // the client left before the vendor's answer arrived
	// OutcomeRuleDenied: one of the key's rules refused the call
	// (Call.Rule names it): max_call_usd, allow, once_per, max_calls, rate.
	OutcomeRuleDenied = "rule_denied"
)

// Cost states of a call.
const (
	CostReserved = "reserved" // reservation held, response not yet read
	CostSettled  = "settled"  // real cost known and recorded
	CostReleased = "released" // vendor moved no money; reservation returned
	CostUnknown  = "unknown"  // ambiguous outcome; reservation kept for reconciliation
	CostUnpriced = "unpriced" // provisional: estimate kept until the vendor prices it (Twilio)
	CostNone     = "none"     // refused before any reservation
)

// IsPendingState tells whether calls in cost state s still wait for
// something (their answer, a sweeper, a price): the states PendingCalls
// lists, and the ones the SQLite ledger keeps a small index of.
func IsPendingState(s string) bool {
	return s == CostReserved || s == CostUnpriced || s == CostUnknown
}

// Hash is the SHA-256 of a vault key's secret. Only hashes are stored.
type Hash [sha256.Size]byte

// HashSecret returns the Hash of a vault key secret.
func HashSecret(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// Key is a vault key as stored: never its secret.
type Key struct {
	ID     string
	Hash   Hash
	Vendor string
	// DailyCap and TotalCap are nil when that cap is not set. At least one
	// is set (the key API enforces it).
	DailyCap         *money.Micros
	TotalCap         *money.Micros
	AllowedEndpoints []string
	RunLabel         string
	Metadata         json.RawMessage // a JSON object, or nil
	CreatedAt        time.Time
	ExpiresAt        time.Time
	RevokedAt        *time.Time // nil unless revoked
	// TokenID is the stored API token that issued the key; "" for a key
	// issued with a configured (bootstrap) token. The token's budget, if
	// any, bounds the key's spend together with its own caps.
	TokenID string
	// Rules are the key's rules beyond dollars; nil when it has none.
	// Reserve decides the stateful ones (max_calls, rate, once_per) from
	// the rules as stored.
	Rules *rules.Rules
	// Approval, when set, holds the key's calls estimated above its
	// threshold for a person's decision (approvals.go).
	Approval *ApprovalRule
}

// Status tells whether the key is active, expired or revoked at now.
// Revocation wins over expiry.
func (k *Key) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return StatusRevoked
	case !now.Before(k.ExpiresAt):
		return StatusExpired
	default:
		return StatusActive
	}
}

// KeyUsage is a key with its running totals.
type KeyUsage struct {
	Key
	Spent    money.Micros // settled costs (and provisional unpriced ones)
	Reserved money.Micros // open reservations, including unknown ones
	// DaySpent and DayReserved are the same for the current UTC day.
	DaySpent    money.Micros
	DayReserved money.Micros
	Calls       int64 // calls forwarded (including idempotent replays)
	CapHits     int64
	// RuleCalls are the money-moving calls counted against the key's
	// max_calls: forwarded, not replays, not released.
	RuleCalls int64
}

// ReserveRequest asks to reserve Estimate against a key and record the call.
type ReserveRequest struct {
	CallID   string // chosen by the caller, unique
	KeyID    string
	Vendor   string // the vendor of the route; a key of another vendor is refused
	Method   string
	Path     string
	Endpoint string // the allowlist entry matched
	Estimate money.Micros
	// Minimum, when above zero and below Estimate, lets Reserve hold less
	// than Estimate: as much as the tighter cap's headroom allows, but at
	// least Minimum (ReserveResult.Reserved says how much). Below Minimum
	// the call is a cap hit.
	Minimum money.Micros
	// IdempotencyKey is the client's idempotency key, recorded on the call.
	// With ReplayWindow above zero (the vendor honours the key), a later
	// call of the same key with the same idempotency key, within the
	// window of an original that had a Fingerprint (the vendor honoured its
	// key), was forwarded with a reservation and is still reserved, settled
	// or unpriced, is:
	//   - OutcomeIdempotentReplay when its Fingerprint equals the
	//     original's and the original has finished: nothing is reserved and
	//     ReplayOf names the original;
	//   - OutcomeIdempotencyInFlight when the original is still reserved;
	//   - OutcomeIdempotencyMismatch when the fingerprints differ.
	// A released or unknown original makes no replay (the retry may really
	// move money): the call is reserved anew.
	IdempotencyKey string
	// Fingerprint identifies the request (method, canonical path, body,
	// scope headers), hashed by the gate.
	Fingerprint  string
	ReplayWindow time.Duration
	// Object is the vendor object the call acts on when it is known before
	// forwarding (a PaymentIntent being confirmed); it is recorded as the
	// call's vendor transaction id, so ObjectExposure counts this call.
	Object string
	// MovesMoney says the call is one the key's stateful rules count (the
	// vendor priced it as moving money). Reserve then checks, after the
	// idempotent replay and before the caps, the key's rules as stored:
	// once_per (OncePer must name the key's once_per subject and
	// OnceValues hold at least one value, none claimed by an earlier
	// call), max_calls, rate; a refusal is OutcomeRuleDenied with
	// ReserveResult.Rule. A forwarded call claims its OnceValues, takes a
	// rate slot and counts against max_calls. A true replay is never
	// counted.
	MovesMoney bool
	OncePer    string
	OnceValues []string
	// Tag is the tag the call will write on the vendor object it creates
	// (vendors.Tagger), "" for none. It is recorded on the call when the
	// call goes ahead (OutcomeForwarded, OutcomeIdempotentReplay), in the
	// same commit as the reservation, unless an earlier call of the key
	// sent the same request (Fingerprint) under the same idempotency key
	// within ReplayWindow and was tagged: every attempt of one idempotent
	// request must send the vendor the same body, so that first attempt's
	// tag is recorded instead. ReserveResult.Tag is the tag recorded.
	Tag string
	Now time.Time
}

// ReserveResult is the outcome of Reserve.
type ReserveResult struct {
	// Outcome is OutcomeForwarded (reserved; go ahead), OutcomeIdempotentReplay
	// (go ahead, nothing reserved), or the refusal: OutcomeCapHit,
	// OutcomeRevoked, OutcomeExpired, OutcomeWrongVendor. A refusal is
	// recorded as a call too.
	Outcome string
	// ReplayOf is the call id of the original call for a replay.
	ReplayOf string
	// RunLabel is the key's run label, for logs.
	RunLabel string
	// Remaining is how much the tighter cap still allows after this
	// reservation (or, on a cap hit, without it).
	Remaining money.Micros
	// Reserved is what was held for a forwarded call: the estimate, or
	// less when a Minimum let it shrink to the headroom.
	Reserved money.Micros
	// Rule names the rule of an OutcomeRuleDenied; RetryAfter, for the
	// rate rule, is when the oldest call of the window leaves it.
	Rule       string
	RetryAfter time.Duration
	// Tag is the tag recorded on a call that goes ahead with a Tag: the
	// request's, or its idempotent request's first attempt's.
	Tag string
}

// Allowed reports whether the call may be forwarded.
func (r ReserveResult) Allowed() bool {
	return r.Outcome == OutcomeForwarded || r.Outcome == OutcomeIdempotentReplay
}

// Settlement is what the vendor's response said about a call.
type Settlement struct {
	StatusCode     int
	Cost           money.Micros // real cost; for Release it is ignored (0)
	VendorAmount   *int64       // in the vendor's minor units, when it said
	VendorCurrency string
	VendorTxnID    string
	Outcome        string // overrides the call's outcome when set (e.g. OutcomeUpstreamError)
	// CostState is the state to settle into; Settle defaults to CostSettled
	// and accepts CostUnpriced for a provisional cost.
	CostState string
	Now       time.Time
}

// Call is one call record, as the audit API shows it.
type Call struct {
	CallID         string
	KeyID          string // empty for a call refused before a key was known
	RunLabel       string
	Vendor         string
	Method         string
	Path           string
	Endpoint       string
	StatusCode     int
	Outcome        string
	Reserved       money.Micros
	Cost           money.Micros
	VendorAmount   *int64
	VendorCurrency string
	VendorTxnID    string
	IdempotencyKey string
	ReplayOf       string
	CostState      string
	// Rule is the rule that refused an OutcomeRuleDenied call.
	Rule string
	// Tag is what the gate wrote on the vendor object the call creates
	// (Stripe metadata[keybrake_call_id], Resend tag keybrake_call_id),
	// recorded before the call was forwarded: a random id, shared only by
	// the attempts of one idempotent request. "" when the call wrote none;
	// the reconciler never releases such a call on the vendor's silence.
	Tag        string
	StartedAt  time.Time
	FinishedAt *time.Time
	// ResolvedBy, ResolvedAt and ResolveReason record a Resolve: who (an
	// API token id, or the reconciler), when and why. Empty and nil for a
	// call the gate settled.
	ResolvedBy    string
	ResolvedAt    *time.Time
	ResolveReason string
	// Count is how many calls the record stands for: 1, except for a
	// refusal recorded by RecordRefusal, which is counted per key,
	// vendor, outcome and minute (RefusalBucket): its record is the
	// minute's first refusal, FinishedAt the last one's end and Count how
	// many there were.
	Count int64
}

// Resolution settles or releases a call whose outcome the gate could not
// tell (unknown, or a reservation left by a node that stopped), from what
// the vendor says happened.
type Resolution struct {
	// Release says the vendor moved no money; else Cost is what it cost,
	// recorded as is even above the reservation.
	Release bool
	Cost    money.Micros
	// VendorTxnID, when set, is the vendor object found for the call.
	VendorTxnID string
	By          string // who: an API token id, or "reconciler"
	Reason      string // why, for the audit
	// StaleBefore: a call still reserved may be resolved when it started
	// before this time (its node stopped). Zero: only unknown calls.
	StaleBefore time.Time
	Now         time.Time
}

// Resolvable reports whether a call in this state, started at startedAt,
// may be resolved under res.
func (res Resolution) Resolvable(costState string, startedAt time.Time) bool {
	return costState == CostUnknown ||
		(costState == CostReserved && !res.StaleBefore.IsZero() && startedAt.Before(res.StaleBefore))
}

// KeyFilter selects keys for ListKeys. Empty fields do not filter.
type KeyFilter struct {
	RunLabel string
	TokenID  string // the keys one API token issued
	Vendor   string
	Status   string // active|expired|revoked, evaluated at Now
	Now      time.Time
	Cursor   string // opaque; from a previous page
	Limit    int    // see PageLimit: 0 means 100, at most 1000, negative refused
}

// AuditFilter selects calls for Audit. Empty fields do not filter.
type AuditFilter struct {
	RunLabel  string
	KeyID     string
	Vendor    string
	Outcome   string
	CostState string
	// VendorTxnID finds the calls behind a vendor transaction (pi_…, SM…).
	VendorTxnID string
	Since       time.Time // inclusive, on StartedAt
	Until       time.Time // exclusive, on StartedAt
	Cursor      string    // opaque; from a previous page
	Limit       int       // see PageLimit: 0 means 100, at most 1000, negative refused
}

// SummaryFilter selects the calls Summary aggregates. Empty fields do not
// filter: a day view is a Day with no run label. Summaries are read from
// the daily rollups (one row per UTC day, run, vendor, endpoint and
// outcome, written with the calls), never from the call rows, so they cost
// the same however many calls there are and outlive retain_calls.
type SummaryFilter struct {
	RunLabel string
	// Day, when set, is the UTC day (any time in it) whose calls are
	// summarised: those that started that day.
	Day time.Time
}

// SummaryRow aggregates calls of one run, vendor, endpoint and outcome.
// Endpoint is empty for a call refused before an allowlist entry matched.
type SummaryRow struct {
	RunLabel string
	Vendor   string
	Endpoint string
	Outcome  string
	// Rule is the rule of rule_denied rows (refusals are counted by rule),
	// "" for every other outcome.
	Rule  string
	Calls int64 // every recorded call, refused ones included
	// Forwarded counts the calls let through to the vendor: those that held
	// a reservation (whatever their outcome became) and idempotent replays.
	Forwarded int64
	Replays   int64 // of Forwarded, the idempotent replays (nothing reserved)
	CapHits   int64
	Refused   int64 // refusals other than cap hits
	Spent     money.Micros
	Reserved  money.Micros // reservations still open (reserved or unknown)
}

// Store is a ledger backend. All methods are safe for concurrent use.
// Errors that mean the backend cannot be reached wrap ErrUnavailable.
type Store interface {
	// CreateKey stores a new key. ErrConflict if the id or hash exists.
	CreateKey(ctx context.Context, k Key) error
	// KeyByHash finds a key by the hash of its secret. ErrNotFound if none.
	KeyByHash(ctx context.Context, h Hash) (Key, error)
	// GetKey returns a key with its usage; DaySpent/DayReserved are for the
	// UTC day of now. ErrNotFound if none.
	GetKey(ctx context.Context, id string, now time.Time) (KeyUsage, error)
	// ListKeys lists keys newest first with a cursor for the next page
	// ("" when there is none). A negative limit or a cursor ListKeys did
	// not make is ErrInvalidPage; so for Audit.
	ListKeys(ctx context.Context, f KeyFilter) ([]KeyUsage, string, error)
	// RevokeKey revokes a key at now. Revoking twice keeps the first time.
	// ErrNotFound if none.
	RevokeKey(ctx context.Context, id string, now time.Time) (Key, error)
	// RevokeKeys revokes at now every key the filter selects (a run, the
	// keys of a token) that is not revoked yet, and returns their ids.
	// Every node's key cache hears of each, as for RevokeKey.
	RevokeKeys(ctx context.Context, f RevokeFilter, now time.Time) ([]string, error)
	// PatchKey changes a key's caps, expiry or allowlist (the fields of p
	// that are set) and returns the key as it now is; every node's key
	// cache hears of it, as for RevokeKey. ErrNotFound if none.
	PatchKey(ctx context.Context, id string, p KeyPatch) (Key, error)

	// CreateToken stores a new API token. ErrConflict if the id or hash
	// exists.
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash finds a token by the hash of its secret, revoked or not.
	// ErrNotFound if none.
	TokenByHash(ctx context.Context, h Hash) (Token, error)
	// GetToken returns a token with its budget usage on now's UTC day.
	// ErrNotFound if none.
	GetToken(ctx context.Context, id string, now time.Time) (TokenUsage, error)
	// ListTokens lists every token, newest first.
	ListTokens(ctx context.Context, now time.Time) ([]TokenUsage, error)
	// RevokeToken revokes a token at now (the first time is kept). Its
	// keys stay as they are, and its budget keeps bounding them.
	// ErrNotFound if none.
	RevokeToken(ctx context.Context, id string, now time.Time) (Token, error)

	// Reserve is the atomic check-and-reserve described in the package doc.
	// After vendor, revocation and expiry it checks that r.Endpoint, when
	// set, is still in the key's stored allowlist (OutcomeEndpointDenied
	// otherwise), so a narrowed allowlist holds whatever a cache says.
	// For a key issued by a token with a budget, the budget is checked in
	// the same atomic step, after the key's own caps: a call the key could
	// afford but the token's budget cannot is OutcomeBudgetHit. A budget
	// counts the reservations and costs of every key the token issued,
	// moved by Reserve, Settle and Release like the key's own counters.
	// ErrNotFound if the key does not exist.
	Reserve(ctx context.Context, r ReserveRequest) (ReserveResult, error)
	// Settle replaces a call's reservation with its real cost.
	Settle(ctx context.Context, callID string, s Settlement) error
	// Release returns a call's reservation: the vendor moved no money.
	Release(ctx context.Context, callID string, s Settlement) error
	// MarkUnknown keeps a call's reservation and marks its cost unknown.
	MarkUnknown(ctx context.Context, callID string, s Settlement) error
	// Settle, Release and MarkUnknown apply only to a call whose cost state
	// is reserved, unknown or unpriced; on any other they do nothing and
	// return nil, so a late or repeated settlement cannot count twice.
	// ErrNotFound if there is no such call.
	//
	// The counters move like this, on the key and on the key's day row for
	// the UTC day the call started (the call's "held" reservation is its
	// Reserved amount while its state is reserved or unknown, else 0):
	//   Settle:      reserved -= held; spent += s.Cost - call.Cost;
	//                call.Cost = s.Cost; state = s.CostState or settled.
	//   Release:     reserved -= held; spent -= call.Cost; call.Cost = 0;
	//                state = released.
	//   MarkUnknown: counters unchanged; state reserved -> unknown (an
	//                unpriced or unknown call is left as it is).
	// Each also records StatusCode, the vendor fields that are set, Outcome
	// when set, and FinishedAt = s.Now.

	// Resolve settles (at res.Cost) or releases (res.Release) one call that
	// res.Resolvable allows, moving the counters as Settle or Release do,
	// records who, when and why, and returns the call as it now is.
	// ErrNotFound if there is no such call; ErrNotResolvable, changing
	// nothing, if it is in any other state (already settled, released,
	// still in flight...), so resolving twice counts once.
	Resolve(ctx context.Context, callID string, res Resolution) (Call, error)

	// RecordRefusal records a call refused before reservation (bad
	// credential, endpoint outside the allowlist, unknown cost...). Reserved
	// and Cost are zero; CostState is CostNone. Refusals are counted per
	// RefusalBucket: the first of its minute is written as it is, with
	// Count 1; each later one adds 1 to that record's Count and moves its
	// FinishedAt, so a flood of refused calls adds one row per key,
	// outcome and minute however many calls it sends.
	RecordRefusal(ctx context.Context, c Call) error

	// ObjectExposure is what a key has counted for one vendor object (a
	// PaymentIntent): the reservations held by its open calls (reserved or
	// unknown) plus the costs of its settled and unpriced calls, over every
	// call of the key whose vendor transaction id is object. A free call
	// (a GET that returned the object) counts nothing.
	ObjectExposure(ctx context.Context, keyID, vendor, object string) (money.Micros, error)
	// Audit lists calls oldest first with a cursor for the next page.
	Audit(ctx context.Context, f AuditFilter) ([]Call, string, error)
	// Summary aggregates the calls f selects by run, vendor, endpoint and
	// outcome (and rule, for rule_denied), in that order.
	Summary(ctx context.Context, f SummaryFilter) ([]SummaryRow, error)
	// PendingCalls lists calls of a vendor in a cost state (CostUnpriced for
	// reconciliation of provisional prices, CostReserved for reservations
	// whose node died) that started before the given time, oldest first, at
	// most limit of them (limit as PageLimit reads it). Another state than
	// those IsPendingState names is an error.
	PendingCalls(ctx context.Context, vendor, costState string, startedBefore time.Time, limit int) ([]Call, error)
	// Ping checks the store can be reached.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Roles of API tokens.
const (
	RoleAdmin  = "admin"  // everything
	RoleIssuer = "issuer" // issue, read, patch and revoke its own keys, within its policy
	RoleReader = "reader" // read keys, audit and summaries
)

// Token is a stored API token, a principal of the key API: never its
// secret.
type Token struct {
	ID   string
	Hash Hash
	Name string
	Role string
	// Policy is the token's issuing policy as JSON (the key API reads
	// it), or nil.
	Policy json.RawMessage
	// DailyCap (per UTC day) and TotalCap are the token's budget over
	// every key it issued; nil when not set.
	DailyCap  *money.Micros
	TotalCap  *money.Micros
	CreatedAt time.Time
	RevokedAt *time.Time
}

// TokenUsage is a token with what its keys have spent and hold.
type TokenUsage struct {
	Token
	Spent, Reserved       money.Micros
	DaySpent, DayReserved money.Micros
}

// RevokeFilter selects the keys RevokeKeys revokes. At least one field is
// set; set fields must all match.
type RevokeFilter struct {
	RunLabel string
	TokenID  string
}

// KeyPatch is a change to a key; nil fields are left as they are.
type KeyPatch struct {
	DailyCap         *money.Micros
	TotalCap         *money.Micros
	ExpiresAt        *time.Time
	AllowedEndpoints []string
	// Rules, when not nil, replace the key's rules (a zero Rules removes
	// them).
	Rules *rules.Rules
	// Approval, when not nil, replaces the key's approval rule;
	// RemoveApproval takes it away (and wins over Approval).
	Approval       *ApprovalRule
	RemoveApproval bool
}

// ApprovalChange is how a backend stores a KeyPatch's approval: whether it
// changes, and the stored form (EncodeApprovalRule: "" for none).
func (p KeyPatch) ApprovalChange() (bool, string) {
	switch {
	case p.RemoveApproval:
		return true, ""
	case p.Approval != nil:
		return true, EncodeApprovalRule(p.Approval)
	}
	return false, ""
}

// RefusalBucket names the record a refusal is counted in: one per key
// (empty for a credential no key matched), vendor, outcome (with its rule,
// RuleOutcome) and UTC minute of StartedAt.
func RefusalBucket(c Call) string {
	return c.KeyID + "|" + c.Vendor + "|" + RuleOutcome(c.Outcome, c.Rule) + "|" + c.StartedAt.UTC().Truncate(time.Minute).Format(time.RFC3339)
}

// Day returns the UTC day of t at midnight, the unit of daily caps.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
