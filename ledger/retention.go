package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/periodic"
)

// Retainer is a Store that can delete old call records (retain_calls).
type Retainer interface {
	// DeleteCalls deletes at most limit calls that started before before
	// and whose cost state is one of RetentionStates, oldest first, and
	// returns how many it deleted. Nothing else changes: a key's and a
	// token's totals and day counters live on their own rows, and the
	// daily rollups the summaries read keep counting the deleted calls.
	DeleteCalls(ctx context.Context, before time.Time, limit int) (int, error)
}

// Defaults of Retention.
const (
	DefaultRetentionInterval = time.Hour
	DefaultRetentionBatch    = 1000
	// MinRetainCalls is the shortest retain_calls accepted: well above any
	// vendor's idempotency replay window (Stripe's 24 hours) and any
	// reconciliation, so no decision still reads a deleted call.
	MinRetainCalls = 7 * 24 * time.Hour
)

// ErrRetainTooShort: a retention shorter than MinRetainCalls.
var ErrRetainTooShort = errors.New("retain_calls is shorter than 7 days")

// Retention deletes call records older than Keep (retain_calls), in
// batches of Batch, each its own short transaction so that the gate's
// writes go on between them. Several nodes sharing a ledger run it one at a
// time (Lock); a node that does not get the lock skips that round.
type Retention struct {
	Store Retainer
	// Keep is how long a call record is kept; at least MinRetainCalls.
	Keep time.Duration
	// Interval is the time between rounds. Default 1h.
	Interval time.Duration
	// Batch is how many calls one transaction deletes. Default 1000.
	Batch int
	// Lock, when set, is taken for a round (ledger.Locker's TryLock).
	Lock func(ctx context.Context) (release func(), ok bool, err error)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Ticks, when set, replaces the Interval ticker (a test's clock).
	Ticks <-chan time.Time
	// Deleted, when set, is told how many calls each batch deleted (the
	// keybrake_calls_deleted_total metric).
	Deleted func(n int)
	Logger  *zap.Logger
}

// Validate checks Keep.
func (r *Retention) Validate() error {
	if r.Keep < MinRetainCalls {
		return fmt.Errorf("%w: %s", ErrRetainTooShort, r.Keep)
	}
	return nil
}

// RunOnce deletes every eligible call, batch after batch, until a batch
// finds fewer than Batch or ctx is done, and returns how many it deleted.
// The cutoff is fixed when the round starts, so calls that age meanwhile
// wait for the next round and a round always ends.
func (r *Retention) RunOnce(ctx context.Context) (int, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	if r.Lock != nil {
		release, ok, err := r.Lock(ctx)
		if err != nil {
			return 0, fmt.Errorf("taking the retention lock: %w", err)
		}
		if !ok {
			return 0, nil // another node is deleting
		}
		defer release()
	}
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultRetentionBatch
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	before := now().Add(-r.Keep)
	total := 0
	for ctx.Err() == nil {
		n, err := r.Store.DeleteCalls(ctx, before, batch)
		total += n
		if n > 0 && r.Deleted != nil {
			r.Deleted(n)
		}
		if err != nil {
			return total, fmt.Errorf("deleting calls older than %s: %w", before.Format(time.RFC3339), err)
		}
		if n < batch {
			break
		}
	}
	return total, nil
}

// Run runs a round at once and then every Interval (or on every value of
// Ticks) until ctx is done.
func (r *Retention) Run(ctx context.Context) error {
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRetentionInterval
	}
	log := r.Logger
	if log == nil {
		log = zap.NewNop()
	}
	round := func(ctx context.Context) {
		n, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("deleting old calls (retain_calls)", zap.Error(err))
		}
		if n > 0 {
			log.Info("old calls deleted (retain_calls)", zap.Int("calls", n), zap.Duration("retain_calls", r.Keep))
		}
	}
	round(ctx)
	return periodic.Run(ctx, r.Ticks, interval, round)
}
