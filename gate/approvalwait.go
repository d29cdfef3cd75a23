package gate

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/ledger"
)

// Approvals is where held calls wait for their decision: a registry of
// waiters by approval id, woken by the ledger's decisions (WatchApprovals:
// in-process on SQLite, LISTEN/NOTIFY on Postgres, so a decision made on
// any node wakes the node holding the call). A held call costs its
// goroutine, a channel and a timer; nothing polls. One Approvals serves
// every gate on a ledger.
type Approvals struct {
	store  ledger.ApprovalStore
	alerts *alerts.Alerter
	log    *zap.Logger
	now    func() time.Time

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// NewApprovals returns the waiter registry of store. al, when set, is told
// of approvals that expired undecided (see Run).
func NewApprovals(store ledger.ApprovalStore, al *alerts.Alerter, logger *zap.Logger) *Approvals {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Approvals{store: store, alerts: al, log: logger, now: time.Now,
		waiters: map[string]map[chan struct{}]struct{}{}}
}

// SetAlerts sets the alerter told of expired approvals (the alerter is
// built after the ledger).
func (a *Approvals) SetAlerts(al *alerts.Alerter) {
	a.mu.Lock()
	a.alerts = al
	a.mu.Unlock()
}

// approvalExpirySweep is how often Run looks for approvals that expired
// undecided, to send approval.expired.
const approvalExpirySweep = time.Minute

// Run wakes waiters as decisions arrive and sends approval.expired for
// approvals that expired undecided, until ctx is done; it returns
// ctx.Err().
func (a *Approvals) Run(ctx context.Context) error {
	var sweeper sync.WaitGroup
	sweeper.Add(1)
	go func() {
		defer sweeper.Done()
		a.sweepExpired(ctx)
	}()
	// The sweeper stops with the watcher, before the store may close.
	defer sweeper.Wait()
	return a.store.WatchApprovals(ctx, a.wake)
}

// sweepExpired sends approval.expired once per expired approval (the
// outbox dedupes across nodes and sweeps).
func (a *Approvals) sweepExpired(ctx context.Context) {
	t := time.NewTicker(approvalExpirySweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		al := a.alerts
		a.mu.Unlock()
		if al == nil {
			continue
		}
		now := a.now()
		expired, err := a.store.ListApprovals(ctx, ledger.ApprovalFilter{Status: ledger.ApprovalExpired, Now: now})
		if err != nil {
			a.log.Warn("listing expired approvals", zap.Error(err))
			continue
		}
		for _, ap := range expired {
			al.ApprovalExpired(ctx, ap, now)
		}
	}
}

// wake signals the waiters of approval id, or every waiter for "*"
// (notifications may have been missed).
func (a *Approvals) wake(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for wid, set := range a.waiters {
		if id != "*" && wid != id {
			continue
		}
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default: // already signalled
			}
		}
	}
}

// register returns a channel signalled when approval id may have been
// decided, and the function that unregisters it.
func (a *Approvals) register(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	if a.waiters[id] == nil {
		a.waiters[id] = map[chan struct{}]struct{}{}
	}
	a.waiters[id][ch] = struct{}{}
	a.mu.Unlock()
	return ch, func() {
		a.mu.Lock()
		delete(a.waiters[id], ch)
		if len(a.waiters[id]) == 0 {
			delete(a.waiters, id)
		}
		a.mu.Unlock()
	}
}

// Holding is how many calls are waiting for a decision now.
func (a *Approvals) Holding() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, set := range a.waiters {
		n += len(set)
	}
	return n
}
