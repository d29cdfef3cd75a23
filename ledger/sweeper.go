package ledger

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/periodic"
)

// StaleSweeper finds reservations whose node died: calls still "reserved"
// long after any request could be in flight (the gate settles every call it
// forwards, even when its client leaves, so only a crash leaves one). It
// marks them "unknown", the state of every ambiguous outcome: the money
// stays reserved, which is the safe side of the cap, and the audit shows
// the calls for reconciliation. Several nodes sweeping one ledger is
// harmless: marking an unknown call unknown again changes nothing.
type StaleSweeper struct {
	Store StaleCalls
	// Vendors are the vendor names to sweep.
	Vendors []string
	// After is how old a reservation must be to count as stale.
	// Default 15m; it must be well above any upstream timeout.
	After time.Duration
	// Interval is the time between sweeps. Default 1m.
	Interval time.Duration
	// Batch bounds the calls marked per vendor and sweep. Default 500.
	Batch int
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *zap.Logger
	// Marked, when set, is told of each call the sweep marked unknown
	// (alerts: call.unknown).
	Marked func(ctx context.Context, c Call, now time.Time)
}

// StaleCalls is the part of a Store a StaleSweeper uses.
type StaleCalls interface {
	PendingCalls(ctx context.Context, vendor, costState string, startedBefore time.Time, limit int) ([]Call, error)
	MarkUnknown(ctx context.Context, callID string, s Settlement) error
}

// Defaults of a StaleSweeper.
const (
	DefaultStaleAfter    = 15 * time.Minute
	DefaultSweepInterval = time.Minute
)

func (s *StaleSweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// RunOnce sweeps once and returns how many calls it marked.
func (s *StaleSweeper) RunOnce(ctx context.Context) (int, error) {
	after, batch := s.After, s.Batch
	if after <= 0 {
		after = DefaultStaleAfter
	}
	if batch <= 0 {
		batch = 500
	}
	now := s.now()
	marked := 0
	for _, vendor := range s.Vendors {
		calls, err := s.Store.PendingCalls(ctx, vendor, CostReserved, now.Add(-after), batch)
		if err != nil {
			return marked, fmt.Errorf("listing stale reservations of %s: %w", vendor, err)
		}
		for _, c := range calls {
			if err := s.Store.MarkUnknown(ctx, c.CallID, Settlement{Now: now}); err != nil {
				return marked, fmt.Errorf("marking stale reservation %s: %w", c.CallID, err)
			}
			marked++
			if s.Marked != nil {
				s.Marked(ctx, c, now)
			}
		}
	}
	return marked, nil
}

// Run sweeps every Interval until ctx is done.
func (s *StaleSweeper) Run(ctx context.Context) error {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	log := s.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return periodic.Run(ctx, nil, interval, func(ctx context.Context) {
		n, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("sweeping stale reservations", zap.Error(err))
		}
		if n > 0 {
			log.Warn("reservations left by a node that stopped are marked unknown for reconciliation",
				zap.Int("calls", n))
		}
	})
}
