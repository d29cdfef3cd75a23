package caddymodule

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// ReconcileConfig configures the background job of a Twilio vendor that
// replaces the provisional cost of its messages and calls (cost_state
// "unpriced", Twilio's price being null when they are created) with the
// real price, fetched from Twilio with the real credentials. It runs while
// the config is live, in every Caddy process that loads it, and stops when
// the config is stopped (reload, shutdown). Several nodes reconciling one
// ledger do not count a call twice.
type ReconcileConfig struct {
	// Off disables the reconciler: provisional costs then stay as they
	// are. Default false.
	Off bool `json:"off,omitempty"`

	// MinAge is how old an unpriced call must be before its price is
	// fetched. Default 2m.
	MinAge caddy.Duration `json:"min_age,omitempty"`

	// Interval is the time between runs. Default 1m.
	Interval caddy.Duration `json:"interval,omitempty"`

	// Batch bounds how many calls one run fetches. Default 100.
	Batch int `json:"batch,omitempty"`

	// GiveUpAfter is how long after a call started its price may still be
	// null before its provisional cost is taken as final. Default 72h.
	GiveUpAfter caddy.Duration `json:"give_up_after,omitempty"`
}

// reconciler returns the Twilio reconciler this configures, without its
// credentials and store, or nil when it is off. base is the vendor's
// expanded upstream.
func (rc *ReconcileConfig) reconciler(vendor, base string) (*twilio.Reconciler, error) {
	cfg := ReconcileConfig{}
	if rc != nil {
		cfg = *rc
	}
	if cfg.Off {
		return nil, nil
	}
	if cfg.MinAge < 0 || cfg.Interval < 0 || cfg.GiveUpAfter < 0 || cfg.Batch < 0 {
		return nil, fmt.Errorf("reconcile: durations and batch must not be negative")
	}
	if cfg.Batch > 10000 {
		return nil, fmt.Errorf("reconcile: batch %d is over the limit of 10000", cfg.Batch)
	}
	if base == "" {
		base = twilio.DefaultReconcileBaseURL
	}
	return &twilio.Reconciler{
		Vendor:      vendor,
		BaseURL:     base,
		MinAge:      time.Duration(cfg.MinAge),
		Interval:    time.Duration(cfg.Interval),
		Batch:       cfg.Batch,
		GiveUpAfter: time.Duration(cfg.GiveUpAfter),
	}, nil
}

// backgroundJob is one job of the app: a Twilio price reconciler or the
// stale-reservation sweeper.
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

// add readies a Twilio reconciler on the app's ledger.
func (b *backgroundJobs) add(rc *twilio.Reconciler, store ledger.Store, logger *zap.Logger) {
	rc.Store = store
	rc.Logger = logger.With(zap.String("vendor", rc.Vendor))
	b.jobs = append(b.jobs, backgroundJob{
		name: "Twilio price reconciler", run: rc.Run, logger: rc.Logger,
		fields: []zap.Field{
			zap.String("upstream", rc.BaseURL),
			zap.Duration("interval", orDefault(rc.Interval, twilio.DefaultReconcileInterval)),
			zap.Duration("min_age", orDefault(rc.MinAge, twilio.DefaultReconcileMinAge)),
		},
	})
}

// addSweeper readies the stale-reservation sweeper.
func (b *backgroundJobs) addSweeper(sw *ledger.StaleSweeper) {
	b.jobs = append(b.jobs, backgroundJob{
		name: "stale reservation sweeper", run: sw.Run, logger: sw.Logger,
		fields: []zap.Field{zap.Duration("stale_after", orDefault(sw.After, ledger.DefaultStaleAfter))},
	})
}

// addReconciler readies the reconciler of unknown and stale calls.
func (b *backgroundJobs) addReconciler(rc *reconcile.Reconciler) {
	b.jobs = append(b.jobs, backgroundJob{
		name: "call reconciler", run: rc.Run, logger: rc.Logger,
		fields: []zap.Field{
			zap.Duration("interval", orDefault(rc.Interval, reconcile.DefaultInterval)),
			zap.Duration("not_found_after", orDefault(rc.NotFoundAfter, reconcile.DefaultNotFoundAfter)),
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

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
