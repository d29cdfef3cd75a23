package ledger

import (
	"context"
	"time"
)

// runEvery calls round every interval until ctx is done, and once at the
// start too when first is set; it returns ctx's error. A background job's
// loop, written once.
func runEvery(ctx context.Context, interval time.Duration, first bool, round func(ctx context.Context)) error {
	if first {
		round(ctx)
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		round(ctx)
	}
}
