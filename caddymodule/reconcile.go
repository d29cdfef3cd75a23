package caddymodule

import (
	"cmp"
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/reconcile"
)

// backgroundJob is one job of the app: a vendor's own (Twilio's price
// reconciler), the call reconciler or the stale-reservation sweeper.
type backgroundJob struct {
	name   string
	run    func(ctx context.Context) error
	logger *zap.Logger
	fields []zap.Field
}

// backgroundJobs runs the app's jobs between Start and Stop.
type backgroundJobs struct {
	mu      sync.Mutex
	jobs    []backgroundJob
	cancel  context.CancelFunc
	running sync.WaitGroup
}

// addVendorJob readies a vendor's own job (Twilio's price reconciler).
func (b *backgroundJobs) addVendorJob(j *vendormodule.Job, logger *zap.Logger) {
	b.jobs = append(b.jobs, backgroundJob{name: j.Name, run: j.Run, logger: logger, fields: j.Fields})
}

// addSweeper readies the stale-reservation sweeper.
func (b *backgroundJobs) addSweeper(sw *ledger.StaleSweeper) {
	b.jobs = append(b.jobs, backgroundJob{
		name: "stale reservation sweeper", run: sw.Run, logger: sw.Logger,
		fields: []zap.Field{zap.Duration("stale_after", cmp.Or(max(sw.After, 0), ledger.DefaultStaleAfter))},
	})
}

// addRetention readies the deletion of old calls (retain_calls).
func (b *backgroundJobs) addRetention(r *ledger.Retention) {
	b.jobs = append(b.jobs, backgroundJob{
		name: "call retention", run: r.Run, logger: r.Logger,
		fields: []zap.Field{zap.Duration("retain_calls", r.Keep), zap.Bool("locked", r.Lock != nil)},
	})
}

// addReconciler readies the reconciler of unknown and stale calls.
func (b *backgroundJobs) addReconciler(rc *reconcile.Reconciler) {
	b.jobs = append(b.jobs, backgroundJob{
		name: "call reconciler", run: rc.Run, logger: rc.Logger,
		fields: []zap.Field{
			zap.Duration("interval", cmp.Or(rc.Interval, reconcile.DefaultInterval)),
			zap.Duration("not_found_after", cmp.Or(rc.NotFoundAfter, reconcile.DefaultNotFoundAfter)),
			zap.Duration("unknown_after_max", cmp.Or(rc.UnknownAfterMax, reconcile.DefaultUnknownAfterMax)),
			zap.Bool("locked", rc.Lock != nil),
		},
	})
}

// start runs every job until stop.
func (b *backgroundJobs) start() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil || len(b.jobs) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	for _, j := range b.jobs {
		b.running.Add(1)
		go func(j backgroundJob) {
			defer b.running.Done()
			j.logger.Info(j.name+" started", j.fields...)
			_ = j.run(ctx)
			j.logger.Info(j.name + " stopped")
		}(j)
	}
}

// stop cancels every job and waits for it to return. Safe to call more
// than once, and without start.
func (b *backgroundJobs) stop() {
	b.mu.Lock()
	cancel := b.cancel
	b.cancel = nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.running.Wait()
}
