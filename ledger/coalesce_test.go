package ledger

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// flakyRunner fails its first n batches as a store that cannot be reached,
// then writes every op.
type flakyRunner struct {
	failFirst int32
	calls     atomic.Int32
}

func (f *flakyRunner) run(_ context.Context, ops []Op) ([]ReserveResult, []error) {
	n := f.calls.Add(1)
	errs := make([]error, len(ops))
	for i := range ops {
		if n <= f.failFirst {
			errs[i] = errors.Join(ErrUnavailable, errors.New("unexpected EOF"))
		}
	}
	return make([]ReserveResult, len(ops)), errs
}

// TestFinishLaterRetriesAnOutage: a settlement queued after the client's
// answer that meets a ledger outage is written again once the ledger is
// back, within its deadline; its callback hears only the final result.
func TestFinishLaterRetriesAnOutage(t *testing.T) {
	r := &flakyRunner{failFirst: 2}
	c := NewCoalescer(r.run, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	result := make(chan error, 1)
	c.FinishLater(ctx, Finish{CallID: "cl1", Mode: FinishSettle}, func(err error) { result <- err })
	if err := <-result; err != nil {
		t.Fatalf("settlement after the outage: %v", err)
	}
	if got := r.calls.Load(); got != 3 {
		t.Errorf("%d writes; want 3 (two failed, one committed)", got)
	}
	if s := c.BatchStats(); s.Retries != 2 {
		t.Errorf("stats %+v; want 2 retries", s)
	}
}

// TestFinishLaterGivesUpAtItsDeadline: an outage longer than the op's
// deadline ends in the error, so the call stays reserved for the sweeper.
func TestFinishLaterGivesUpAtItsDeadline(t *testing.T) {
	r := &flakyRunner{failFirst: 1 << 30}
	c := NewCoalescer(r.run, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	result := make(chan error, 1)
	c.FinishLater(ctx, Finish{CallID: "cl1", Mode: FinishSettle}, func(err error) { result <- err })
	if err := <-result; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("settlement through an endless outage: %v; want ErrUnavailable", err)
	}
}

// TestReserveIsNotRetried: a reservation's caller is waiting and must be
// answered (503) at once; nothing writes it later behind its back.
func TestReserveIsNotRetried(t *testing.T) {
	r := &flakyRunner{failFirst: 1}
	c := NewCoalescer(r.run, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Do(ctx, Op{Reserve: &ReserveRequest{CallID: "cl1"}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("reservation during an outage: %v; want ErrUnavailable", err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.calls.Load(); got != 1 {
		t.Errorf("%d writes; want the one that failed", got)
	}
}

// TestCloseEndsARetry: a settlement waiting to be retried when the store
// closes fails with ErrClosed rather than being written after Close.
func TestCloseEndsARetry(t *testing.T) {
	r := &flakyRunner{failFirst: 1 << 30}
	c := NewCoalescer(r.run, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	result := make(chan error, 1)
	c.FinishLater(ctx, Finish{CallID: "cl1", Mode: FinishSettle}, func(err error) { result <- err })
	for c.BatchStats().Retries == 0 {
		time.Sleep(time.Millisecond)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
	defer cancelClose()
	_ = c.Close(closeCtx)
	if err := <-result; !errors.Is(err, ErrClosed) {
		t.Fatalf("retry after Close: %v; want ErrClosed", err)
	}
}
