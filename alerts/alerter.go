package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/randid"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// KeyReader reads a key with its usage (a ledger.Store does).
type KeyReader interface {
	GetKey(ctx context.Context, id string, now time.Time) (ledger.KeyUsage, error)
}

// TokenReader reads an API token with its budget usage (a ledger.Store
// does).
type TokenReader interface {
	GetToken(ctx context.Context, id string, now time.Time) (ledger.TokenUsage, error)
}

// EventEnqueuer is the part of the ledger's outbox an Alerter writes to
// (a ledger.Outbox is one).
type EventEnqueuer interface {
	EnqueueEvent(ctx context.Context, e ledger.OutboxEvent) (bool, error)
}

// Alerter notices events and writes them to the outbox, one row per
// webhook that wants them. Its methods are safe for concurrent use and
// never fail the call that raised them: an outbox that cannot be written
// is logged.
type Alerter struct {
	Outbox EventEnqueuer
	Keys   KeyReader
	// Tokens, when set, lets settled calls of token-issued keys raise
	// budget.threshold.
	Tokens   TokenReader
	Webhooks []Webhook
	Logger   *zap.Logger
	// Wake, when set, is sent to (without blocking) after an event is
	// stored, so the Sender delivers it at once rather than at its next
	// poll.
	Wake chan<- struct{}
	// DashboardURL is the absolute address of the dashboard, for the
	// links in approval events. Default DashboardPath.
	DashboardURL string

	// known remembers the dedupe keys this process has stored (or found
	// stored), so a key above a threshold costs one insert, not one per
	// call. It is only an optimisation: the outbox's unique key decides.
	mu    sync.Mutex
	known map[string]struct{}
}

// knownLimit bounds the memory of known dedupe keys; past it the memory
// starts again (the outbox still refuses duplicates).
const knownLimit = 100_000

// envelope is the body of an event in the keybrake format.
type envelope struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    any    `json:"data"`
}

// KeyThresholdData is the data of key.threshold: spend (settled and
// provisional) reached ThresholdPercent of a cap.
type KeyThresholdData struct {
	KeyID            string       `json:"key_id"`
	RunLabel         string       `json:"agent_run_label"`
	Vendor           string       `json:"vendor"`
	Cap              string       `json:"cap"` // daily or total
	Day              string       `json:"day,omitempty"`
	ThresholdPercent int          `json:"threshold_percent"`
	CapUSD           money.Micros `json:"cap_usd"`
	SpentUSD         money.Micros `json:"spent_usd"`
	ReservedUSD      money.Micros `json:"reserved_usd"`
	RemainingUSD     money.Micros `json:"remaining_usd"`
}

// KeyCapHitData is the data of key.cap_hit: the first call of the key (per
// UTC day) refused at its cap.
type KeyCapHitData struct {
	KeyID        string       `json:"key_id"`
	RunLabel     string       `json:"agent_run_label"`
	Vendor       string       `json:"vendor"`
	CallID       string       `json:"call_id"`
	Endpoint     string       `json:"endpoint"`
	Day          string       `json:"day"`
	RemainingUSD money.Micros `json:"remaining_usd"`
}

// KeyRevokedData is the data of key.revoked.
type KeyRevokedData struct {
	KeyID     string    `json:"key_id"`
	RunLabel  string    `json:"agent_run_label"`
	Vendor    string    `json:"vendor"`
	RevokedAt time.Time `json:"revoked_at"`
}

// CallUnknownData is the data of call.unknown: a forwarded call whose
// outcome is ambiguous; its reservation stays counted until resolved.
type CallUnknownData struct {
	CallID      string       `json:"call_id"`
	KeyID       string       `json:"key_id"`
	RunLabel    string       `json:"agent_run_label"`
	Vendor      string       `json:"vendor"`
	Method      string       `json:"method"`
	Path        string       `json:"path"`
	Outcome     string       `json:"outcome"`
	StatusCode  int          `json:"status_code"`
	ReservedUSD money.Micros `json:"reserved_usd"`
	// Reason, on a call the reconciler hands to an operator, says why.
	Reason string `json:"reason,omitempty"`
}

// BudgetThresholdData is the data of budget.threshold: the spend of every
// key a token issued reached ThresholdPercent of the token's budget.
type BudgetThresholdData struct {
	TokenID          string       `json:"token_id"`
	TokenName        string       `json:"token_name,omitempty"`
	Budget           string       `json:"budget"` // daily or total
	Day              string       `json:"day,omitempty"`
	ThresholdPercent int          `json:"threshold_percent"`
	CapUSD           money.Micros `json:"cap_usd"`
	SpentUSD         money.Micros `json:"spent_usd"`
}

// Budget is a token budget's state, for BudgetSpent.
type Budget struct {
	TokenID, TokenName string
	// Kind is "daily" or "total".
	Kind  string
	Cap   money.Micros
	Spent money.Micros
}

func (a *Alerter) logger() *zap.Logger {
	if a == nil || a.Logger == nil {
		return zap.NewNop()
	}
	return a.Logger
}

// active tells whether any webhook is configured.
func (a *Alerter) active() bool { return a != nil && a.Outbox != nil && len(a.Webhooks) > 0 }

// MayCross tells, without a ledger read, whether a spend call on k may have
// crossed a threshold: headroom is what the tighter cap allows after the
// call (ledger.ReserveResult.Remaining, less any cost above the
// reservation). Each cap's use is at most cap - headroom, so below every
// webhook's lowest threshold on every cap nothing can have crossed.
func (a *Alerter) MayCross(k *ledger.Key, headroom money.Micros) bool {
	if !a.active() || !a.wantsAny(EventKeyThreshold) {
		return false
	}
	lowest := 100
	for _, w := range a.Webhooks {
		if w.wants(EventKeyThreshold) && len(w.Thresholds) > 0 {
			lowest = min(lowest, w.Thresholds[0])
		}
	}
	for _, c := range []*money.Micros{k.DailyCap, k.TotalCap} {
		if c != nil && reached(*c-headroom, *c, lowest) {
			return true
		}
	}
	return false
}

// reached tells whether used is at least pct percent of cap, exactly.
func reached(used, cap money.Micros, pct int) bool {
	if cap <= 0 {
		return used > 0 || pct <= 0
	}
	// used*100 >= pct*cap, without overflow for any cap in micro-dollars
	// below ~92 billion dollars.
	return int64(used)*100 >= int64(pct)*int64(cap)
}

func (a *Alerter) wantsAny(typ string) bool {
	for _, w := range a.Webhooks {
		if w.wants(typ) {
			return true
		}
	}
	return false
}

// KeySpent reads the key's spend after a call settled and enqueues
// key.threshold for every threshold its daily or total cap has reached.
func (a *Alerter) KeySpent(ctx context.Context, keyID string, now time.Time) {
	if !a.active() || a.Keys == nil {
		return
	}
	ku, err := a.Keys.GetKey(ctx, keyID, now)
	if err != nil {
		a.logger().Error("reading key for alerts", zap.String("key_id", keyID), zap.Error(err))
		return
	}
	day := ledger.Day(now).Format(time.DateOnly)
	at := crossingClock(now)
	type capUse struct {
		name, day       string
		cap             *money.Micros
		spent, reserved money.Micros
	}
	for _, c := range []capUse{
		{"total", "", ku.TotalCap, ku.Spent, ku.Reserved},
		{"daily", day, ku.DailyCap, ku.DaySpent, ku.DayReserved},
	} {
		if c.cap == nil {
			continue
		}
		for i := range a.Webhooks {
			w := &a.Webhooks[i]
			if !w.wants(EventKeyThreshold) {
				continue
			}
			for _, pct := range w.Thresholds {
				if !reached(c.spent, *c.cap, pct) {
					break
				}
				dedupe := fmt.Sprintf("%s:%s:%s:%s%d", EventKeyThreshold, ku.ID, c.name, dayPart(c.day), pct)
				a.enqueue(ctx, w, EventKeyThreshold, dedupe, at(), KeyThresholdData{
					KeyID: ku.ID, RunLabel: ku.RunLabel, Vendor: ku.Vendor, Cap: c.name, Day: c.day,
					ThresholdPercent: pct, CapUSD: *c.cap, SpentUSD: c.spent, ReservedUSD: c.reserved,
					RemainingUSD: max(0, *c.cap-c.spent-c.reserved),
				})
			}
		}
	}
}

// crossingClock stamps the events of one crossing (a charge that reaches
// 50, 80 and 100% at once) a microsecond apart, in threshold order: the
// outbox hands out due events oldest first, so they are sent in that order
// rather than in the order of their random ids. A microsecond is the
// resolution both ledgers keep.
func crossingClock(now time.Time) func() time.Time {
	n := 0
	return func() time.Time {
		n++
		return now.Add(time.Duration(n-1) * time.Microsecond)
	}
}

func dayPart(day string) string {
	if day == "" {
		return ""
	}
	return day + ":"
}

// CapHit enqueues key.cap_hit for the first call of k refused at its cap on
// now's UTC day.
func (a *Alerter) CapHit(ctx context.Context, k *ledger.Key, callID, endpoint string, remaining money.Micros, now time.Time) {
	if !a.active() {
		return
	}
	day := ledger.Day(now).Format(time.DateOnly)
	dedupe := EventKeyCapHit + ":" + k.ID + ":" + day
	a.each(ctx, EventKeyCapHit, dedupe, now, KeyCapHitData{
		KeyID: k.ID, RunLabel: k.RunLabel, Vendor: k.Vendor, CallID: callID, Endpoint: endpoint,
		Day: day, RemainingUSD: remaining,
	})
}

// Revoked enqueues key.revoked for k, once.
func (a *Alerter) Revoked(ctx context.Context, k ledger.Key, now time.Time) {
	if !a.active() {
		return
	}
	at := now
	if k.RevokedAt != nil {
		at = *k.RevokedAt
	}
	a.each(ctx, EventKeyRevoked, EventKeyRevoked+":"+k.ID, now, KeyRevokedData{
		KeyID: k.ID, RunLabel: k.RunLabel, Vendor: k.Vendor, RevokedAt: at.UTC(),
	})
}

// RevokedID enqueues key.revoked for the key with that id, read from the
// ledger, if it is revoked: the key API tells the same hook of a PATCH,
// which must neither alert nor, since the event is sent once per key,
// silence the real revocation's alert.
func (a *Alerter) RevokedID(ctx context.Context, keyID string, now time.Time) {
	if !a.active() || a.Keys == nil {
		return
	}
	ku, err := a.Keys.GetKey(ctx, keyID, now)
	if err != nil {
		a.logger().Error("reading revoked key for alerts", zap.String("key_id", keyID), zap.Error(err))
		return
	}
	if ku.RevokedAt == nil {
		return
	}
	a.Revoked(ctx, ku.Key, now)
}

// CallUnknown enqueues call.unknown for a call, once.
func (a *Alerter) CallUnknown(ctx context.Context, d CallUnknownData, now time.Time) {
	if !a.active() {
		return
	}
	a.each(ctx, EventCallUnknown, EventCallUnknown+":"+d.CallID, now, d)
}

// CallUnresolved enqueues call.unknown once more for a call the reconciler
// gives up on (past unknown_after_max): its money stays counted until an
// operator resolves it. Once per call, however many runs see it.
func (a *Alerter) CallUnresolved(ctx context.Context, d CallUnknownData, now time.Time) {
	if !a.active() {
		return
	}
	a.each(ctx, EventCallUnknown, EventCallUnknown+":"+d.CallID+":operator", now, d)
}

// WantsBudgets tells whether a settled call of a token-issued key should
// be followed by TokenSpent: some webhook wants budget.threshold and the
// tokens can be read.
func (a *Alerter) WantsBudgets() bool {
	return a.active() && a.Tokens != nil && a.wantsAny(EventBudgetThreshold)
}

// TokenSpent reads the token's budget usage after a call of one of its keys
// settled and enqueues budget.threshold for every threshold its daily or
// total budget has reached. Only settled spend counts, as for key.threshold.
func (a *Alerter) TokenSpent(ctx context.Context, tokenID string, now time.Time) {
	if !a.WantsBudgets() || tokenID == "" {
		return
	}
	tu, err := a.Tokens.GetToken(ctx, tokenID, now)
	if err != nil {
		a.logger().Error("reading token for alerts", zap.String("token_id", tokenID), zap.Error(err))
		return
	}
	if tu.TotalCap != nil {
		a.BudgetSpent(ctx, Budget{TokenID: tu.ID, TokenName: tu.Name, Kind: "total", Cap: *tu.TotalCap, Spent: tu.Spent}, now)
	}
	if tu.DailyCap != nil {
		a.BudgetSpent(ctx, Budget{TokenID: tu.ID, TokenName: tu.Name, Kind: "daily", Cap: *tu.DailyCap, Spent: tu.DaySpent}, now)
	}
}

// BudgetSpent enqueues budget.threshold for every threshold a token's
// budget has reached: the hook for token budgets, called with the budget's
// state after a call settled. Daily budgets cross once per UTC day.
func (a *Alerter) BudgetSpent(ctx context.Context, b Budget, now time.Time) {
	if !a.active() || b.Cap <= 0 {
		return
	}
	day := ""
	if b.Kind == "daily" {
		day = ledger.Day(now).Format(time.DateOnly)
	}
	at := crossingClock(now)
	for i := range a.Webhooks {
		w := &a.Webhooks[i]
		if !w.wants(EventBudgetThreshold) {
			continue
		}
		for _, pct := range w.Thresholds {
			if !reached(b.Spent, b.Cap, pct) {
				break
			}
			dedupe := fmt.Sprintf("%s:%s:%s:%s%d", EventBudgetThreshold, b.TokenID, b.Kind, dayPart(day), pct)
			a.enqueue(ctx, w, EventBudgetThreshold, dedupe, at(), BudgetThresholdData{
				TokenID: b.TokenID, TokenName: b.TokenName, Budget: b.Kind, Day: day,
				ThresholdPercent: pct, CapUSD: b.Cap, SpentUSD: b.Spent,
			})
		}
	}
}

// each enqueues one event for every webhook that wants typ.
func (a *Alerter) each(ctx context.Context, typ, dedupe string, now time.Time, data any) {
	for i := range a.Webhooks {
		if w := &a.Webhooks[i]; w.wants(typ) {
			a.enqueue(ctx, w, typ, dedupe, now, data)
		}
	}
}

// enqueue writes one event for w unless this process knows it is stored.
func (a *Alerter) enqueue(ctx context.Context, w *Webhook, typ, dedupe string, now time.Time, data any) {
	known := w.Name + "\x00" + dedupe
	a.mu.Lock()
	_, seen := a.known[known]
	a.mu.Unlock()
	if seen {
		return
	}
	id := newEventID()
	body, err := json.Marshal(envelope{ID: id, Type: typ, Created: now.Unix(), Data: data})
	if err != nil {
		a.logger().Error("encoding event", zap.String("type", typ), zap.Error(err))
		return
	}
	added, err := a.Outbox.EnqueueEvent(ctx, ledger.OutboxEvent{
		ID: id, Webhook: w.Name, DedupeKey: dedupe, Type: typ, Payload: body, CreatedAt: now,
	})
	if err != nil {
		a.logger().Error("enqueueing event", zap.String("webhook", w.Name), zap.String("type", typ),
			zap.String("dedupe_key", dedupe), zap.Error(err))
		return
	}
	a.mu.Lock()
	if a.known == nil || len(a.known) >= knownLimit {
		a.known = map[string]struct{}{}
	}
	a.known[known] = struct{}{}
	a.mu.Unlock()
	if added && a.Wake != nil {
		select {
		case a.Wake <- struct{}{}:
		default:
		}
	}
	if added {
		a.logger().Info("event enqueued", zap.String("webhook", w.Name), zap.String("type", typ),
			zap.String("event_id", id), zap.String("dedupe_key", dedupe))
	}
}

// newEventID returns "evt" and 22 random base62 characters.
func newEventID() string {
	return "evt" + randid.Base62(22)
}
