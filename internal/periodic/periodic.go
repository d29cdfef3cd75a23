// Package periodic is the loop of Keybrake's reconcilers: a run on every
// tick until the context ends.
package periodic

import (
	"context"
	"time"
)

// Run calls run every interval, or on every value of ticks when ticks is
// set (a test's clock), until ctx is done. It returns ctx's error, or nil
// when ticks is closed.
func Run(ctx context.Context, ticks <-chan time.Time, interval time.Duration, run func(context.Context)) error {
	if ticks == nil {
		t := time.NewTicker(interval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-ticks:
			if !ok {
				return nil
			}
			run(ctx)
		}
	}
}
