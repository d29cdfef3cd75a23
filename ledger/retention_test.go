package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// fakeRetainer has eligible old calls and records each batch's cutoff.
type fakeRetainer struct {
	eligible int
	batches  []int
	cutoffs  []time.Time
}

func (f *fakeRetainer) DeleteCalls(_ context.Context, before time.Time, limit int) (int, error) {
	n := min(f.eligible, limit)
	f.eligible -= n
	f.batches = append(f.batches, n)
	f.cutoffs = append(f.cutoffs, before)
	return n, nil
}

func TestRetentionBatches(t *testing.T) {
	now := time.Date(2031, 5, 17, 9, 30, 0, 0, time.UTC)
	store := &fakeRetainer{eligible: 25}
	deleted := 0
	r := &ledger.Retention{Store: store, Keep: 30 * 24 * time.Hour, Batch: 10,
		Now: func() time.Time { return now }, Deleted: func(n int) { deleted += n }}
	n, err := r.RunOnce(context.Background())
	if err != nil || n != 25 || deleted != 25 {
		t.Fatalf("RunOnce = %d, %v (metric %d); want 25", n, err, deleted)
	}
	if want := []int{10, 10, 5}; len(store.batches) != 3 || store.batches[2] != 5 {
		t.Errorf("batches %v; want %v", store.batches, want)
	}
	for _, c := range store.cutoffs {
		if !c.Equal(now.Add(-30 * 24 * time.Hour)) {
			t.Errorf("cutoff %s; want 30 days before now", c)
		}
	}
}

func TestRetentionLock(t *testing.T) {
	store := &fakeRetainer{eligible: 5}
	r := &ledger.Retention{Store: store, Keep: ledger.MinRetainCalls,
		Lock: func(context.Context) (func(), bool, error) { return nil, false, nil }}
	if n, err := r.RunOnce(context.Background()); n != 0 || err != nil || len(store.batches) != 0 {
		t.Fatalf("without the lock: RunOnce = %d, %v after %d batches; want nothing done", n, err, len(store.batches))
	}
	released := false
	r.Lock = func(context.Context) (func(), bool, error) { return func() { released = true }, true, nil }
	if n, err := r.RunOnce(context.Background()); n != 5 || err != nil || !released {
		t.Fatalf("with the lock: RunOnce = %d, %v, released %v", n, err, released)
	}
	r.Lock = func(context.Context) (func(), bool, error) { return nil, false, errors.New("ledger down") }
	if _, err := r.RunOnce(context.Background()); err == nil {
		t.Fatal("a failing lock is no error")
	}
}

// TestRetentionRun: Run deletes at once and on every tick, and returns
// once its context is done.
func TestRetentionRun(t *testing.T) {
	store := &fakeRetainer{eligible: 3}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r := &ledger.Retention{Store: store, Keep: ledger.MinRetainCalls, Ticks: ticks}
	go func() { done <- r.Run(ctx) }()
	ticks <- time.Time{} // taken after the first round
	ticks <- time.Time{} // taken after the second
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
	if len(store.batches) < 2 || store.batches[0] != 3 {
		t.Fatalf("batches %v; want the first round's 3, then a round per tick", store.batches)
	}
}
