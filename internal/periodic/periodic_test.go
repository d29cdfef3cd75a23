package periodic

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Each tick is one run; closing the ticks ends Run with nil.
func TestRunOnTicks(t *testing.T) {
	ticks := make(chan time.Time)
	done := make(chan error)
	runs := 0
	go func() {
		done <- Run(context.Background(), ticks, time.Hour, func(context.Context) { runs++ })
	}()
	for range 3 {
		ticks <- time.Time{}
	}
	close(ticks)
	if err := <-done; err != nil || runs != 3 {
		t.Fatalf("Run = %v after %d runs; want nil after 3", err, runs)
	}
}

// A context ended stops Run with its error, without a run.
func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runs := 0
	err := Run(ctx, nil, time.Hour, func(context.Context) { runs++ })
	if !errors.Is(err, context.Canceled) || runs != 0 {
		t.Fatalf("Run = %v after %d runs; want context.Canceled after 0", err, runs)
	}
}
