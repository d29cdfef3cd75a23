// Package caddymodule registers Keybrake's Caddy modules: the keybrake app
// (global option), the http.handlers.keybrake gate and the
// http.handlers.keybrake_api key API. It is the only package that imports
// Caddy; the rest of Keybrake is plain Go.
package caddymodule

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/keyapi"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/reconcile"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the keybrake app. It owns the ledger connection, the key cache,
// the vendor definitions and the API tokens, shared by every keybrake
// handler. The ledger and cache are kept in a caddy.UsagePool keyed by the
// ledger DSN, so a config reload that keeps the same ledger keeps its
// connections and its cache.
type App struct {
	// Ledger names the ledger: a postgres://… DSN for a fleet, or
	// sqlite:PATH for the embedded ledger. Placeholders such as
	// {env.KEYBRAKE_LEDGER} are expanded. Default: sqlite:keybrake.db in the
	// working directory.
	Ledger string `json:"ledger,omitempty"`

	// APITokens are the bearer tokens accepted by the key API. Empty
	// tokens (an unset {env.…}) are ignored. Default: none, and the key API
	// refuses every call.
	APITokens []string `json:"api_tokens,omitempty"`

	// MaxTTL is the longest expires_in a key may be issued with.
	// Default: 24h.
	MaxTTL caddy.Duration `json:"max_ttl,omitempty"`

	// DefaultTTL is the TTL of a key issued without expires_in.
	// Default: 1h.
	DefaultTTL caddy.Duration `json:"default_ttl,omitempty"`

	// KeyCacheTTL bounds how long a key looked up by its hash is cached.
	// Revocation does not depend on it: the ledger checks revocation when
	// it reserves. A reload that changes it applies it to the running
	// ledger (and empties the cache). Default: 5s.
	KeyCacheTTL caddy.Duration `json:"key_cache_ttl,omitempty"`

	// StaleReservationAfter is how long a call may stay reserved, with no
	// settlement, before the sweeper marks it unknown for reconciliation
	// (its node stopped mid-call). The money stays reserved. Default: 15m.
	StaleReservationAfter caddy.Duration `json:"stale_reservation_after,omitempty"`

	// ReconcileInterval is the time between runs of the reconciler, which
	// asks vendors what became of unknown calls and stale reservations
	// (Stripe, by the call id Keybrake writes in metadata) and settles or
	// releases them. One node of a fleet runs it at a time. Default: 1m.
	ReconcileInterval caddy.Duration `json:"reconcile_interval,omitempty"`

	// ReconcileNotFoundAfter is how old a call must be before the vendor
	// showing nothing for it, through a consistent read (Stripe: a list of
	// the objects created in the call's window, matched by the tag
	// Keybrake wrote), releases its reservation: longer than the vendor
	// can still be acting on a request, so above the upstream timeout.
	// A call that wrote no tag is never released so. Default: 2m; at most
	// 4m.
	ReconcileNotFoundAfter caddy.Duration `json:"reconcile_not_found_after,omitempty"`

	// UnknownAfterMax is how long the reconciler keeps asking the vendor
	// about an unknown call. Past it the call is handed to an operator
	// (the call.unknown webhook, with a reason) and its money stays
	// counted until POST /vault/calls/{id}/resolve: it never goes back to
	// the key by itself. Default: 1h; above reconcile_not_found_after.
	UnknownAfterMax caddy.Duration `json:"unknown_after_max,omitempty"`

	// RetainCalls is how long call records are kept: older ones that are
	// settled, released or refused are deleted, in small batches, by one
	// node at a time (reserved, unknown and unpriced ones are kept
	// whatever their age). Keys' and tokens' totals and the daily
	// summaries are not call rows and are never deleted; export the calls
	// first (`caddy keybrake export`) to archive them. At least 7 days
	// ("400d" is 400 days). Default: 0, every call is kept.
	RetainCalls caddy.Duration `json:"retain_calls,omitempty"`

	// Vendors declares the vendors by name. Each is a module of the
	// keybrake.vendors namespace named by its "kind" (stripe, twilio,
	// resend, declared, or one built in from another package), with that
	// module's options: {"stripe": {"kind": "stripe", "secret_key":
	// "{env.STRIPE_SECRET_KEY}"}}. Without a kind, a vendor named like a
	// kind is of that kind, and any other is declared. Default: none.
	Vendors map[string]json.RawMessage `json:"vendors,omitempty" caddy:"namespace=keybrake.vendors inline_key=kind"`

	// Webhooks receive alert events from the ledger's outbox. Default:
	// none (events are not recorded).
	Webhooks []*WebhookConfig `json:"webhooks,omitempty"`

	// WebhookDelivery tunes retries and polling of the webhook sender.
	WebhookDelivery *WebhookDelivery `json:"webhook_delivery,omitempty"`

	// DashboardURL is the absolute address of the dashboard
	// (https://keybrake.example.com/vault/ui/), linked from the
	// approval.* events. Default: the path /vault/ui/ alone.
	DashboardURL string `json:"dashboard_url,omitempty"`
	// PinnedEnv holds environment variables the Caddyfile reads when it is
	// adapted ({$NAME}: the site address, bind, upstreams) with the values
	// they had then, null for unset; the Caddyfile's `pin_env NAME...`
	// fills it in. Provision refuses a config whose values differ from the
	// environment of the running process, so a `caddy reload` run from
	// another shell cannot move the site or send calls to another upstream.
	// Default: none.
	PinnedEnv map[string]*string `json:"pinned_env,omitempty"`

	ledger *ledgerHandle
	dsn    string
	ctx    caddy.Context
	// ready is closed by Start once the ledger is open and every handler
	// registered with whenLedger is built on it; handlers wait on it.
	ready    chan struct{}
	onLedger []func(*ledgerHandle) error
	vendors  map[string]*vendorRuntime
	tokens   []string
	logger   *zap.Logger
	now      func() time.Time
	// hooks are the webhooks, placeholders replaced and checked in
	// Provision; Start builds the alerter on the ledger with them.
	hooks []alerts.Webhook
	// jobs are the background jobs (Twilio price reconcilers) that run
	// while this config is live: from Start to Stop.
	jobs *backgroundJobs
	// alerts writes events to the outbox; nil without webhooks (its
	// methods then do nothing).
	alerts *alerts.Alerter
	// ledgerUse is this config's hold on ledger, given back by Cleanup.
	ledgerUse *ledgerUse
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "keybrake",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision builds the vendors. It does not touch the ledger: `caddy
// validate` provisions a config without starting it, and must never open,
// create or migrate a ledger. Start does.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.ctx = ctx
	if err := checkPinnedEnv(a.PinnedEnv, os.LookupEnv); err != nil {
		return err
	}
	a.ready = make(chan struct{})
	a.now = time.Now
	repl := caddy.NewReplacer()

	dsn := repl.ReplaceAll(a.Ledger, "")
	if dsn == "" {
		dsn = ledger.DefaultDSN
	}
	if a.MaxTTL == 0 {
		a.MaxTTL = caddy.Duration(keyapi.DefaultMaxTTL)
	}
	if a.DefaultTTL == 0 {
		a.DefaultTTL = caddy.Duration(keyapi.DefaultDefaultTTL)
	}
	if a.KeyCacheTTL == 0 {
		a.KeyCacheTTL = caddy.Duration(ledger.DefaultKeyCacheTTL)
	}
	for _, t := range a.APITokens {
		if t = repl.ReplaceAll(t, ""); t != "" {
			a.tokens = append(a.tokens, t)
		}
	}
	if len(a.tokens) == 0 {
		a.logger.Warn("no API token configured: the key API refuses every call (set api_token, e.g. {env.KEYBRAKE_API_TOKEN})")
	}

	a.vendors = make(map[string]*vendorRuntime, len(a.Vendors))
	for _, name := range a.vendorNames() {
		rt, err := a.loadVendor(ctx, name)
		if err != nil {
			return fmt.Errorf("vendor %s: %w", name, err)
		}
		if err := checkDefaultRules(name, rt); err != nil {
			return fmt.Errorf("vendor %s: %w", name, err)
		}
		if rt.notConfigured != "" {
			missing, _ := rt.module.VendorBase().Missing()
			a.logger.Warn("vendor has no secret: its calls are refused with 503 until it is set",
				zap.String("vendor", name), zap.Strings("missing", missing))
		}
		a.vendors[name] = rt
	}

	a.dsn = dsn
	a.jobs = &backgroundJobs{}
	hooks, err := a.webhooks(repl)
	if err != nil {
		return err
	}
	a.hooks = hooks
	return nil
}

// whenLedger registers fn to run in Start once the ledger is open, before
// any request is let through: a handler builds itself on the ledger there.
// It is called from handlers' Provision, which runs before Start.
func (a *App) whenLedger(fn func(*ledgerHandle) error) {
	a.onLedger = append(a.onLedger, fn)
}

// await blocks until Start has opened the ledger and built the handlers,
// or ctx is done.
func (a *App) await(ctx context.Context) error {
	select {
	case <-a.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start implements caddy.App: it opens (or reuses) the ledger, builds the
// handlers registered with whenLedger on it, and starts the background
// jobs (Twilio price reconcilers, the stale-reservation sweeper).
func (a *App) Start() error {
	h, use, err := openLedger(a.ctx, a.dsn, time.Duration(a.KeyCacheTTL), a.logger)
	if err != nil {
		return err
	}
	a.ledger, a.ledgerUse = h, use
	// Before the handlers are built: the gate and the key API enqueue
	// alerts through a.alerts.
	if err := a.startAlerts(); err != nil {
		return err
	}
	for _, fn := range a.onLedger {
		if err := fn(h); err != nil {
			return err
		}
	}
	for _, name := range a.vendorNames() {
		rt := a.vendors[name]
		jr, ok := rt.module.(vendormodule.JobRunner)
		if !ok || rt.notConfigured != "" {
			continue
		}
		logger := a.logger.With(zap.String("vendor", name))
		if rt.job = jr.Job(h.store, logger); rt.job != nil {
			a.jobs.addVendorJob(rt.job, logger)
		}
	}
	if ret, err := a.retention(h.store); err != nil {
		return err
	} else if ret != nil {
		a.jobs.addRetention(ret)
	}
	if rc := a.vendorReconciler(h.store); rc != nil {
		a.jobs.addReconciler(rc)
	}
	if len(a.Vendors) > 0 {
		a.jobs.addSweeper(&ledger.StaleSweeper{
			Store:   h.store,
			Vendors: a.vendorNames(),
			After:   time.Duration(a.StaleReservationAfter),
			Logger:  a.logger,
			Marked: func(ctx context.Context, c ledger.Call, now time.Time) {
				a.alerts.CallUnknown(ctx, alerts.CallUnknownData{
					CallID: c.CallID, KeyID: c.KeyID, RunLabel: c.RunLabel, Vendor: c.Vendor, Method: c.Method,
					Path: c.Path, Outcome: "stale_reservation", StatusCode: c.StatusCode, ReservedUSD: c.Reserved,
				}, now)
			},
		})
	}
	close(a.ready)
	a.jobs.start()
	return nil
}

// vendorReconciler is the reconciler of the vendors that can be asked
// about a call (reconcile.Finder), nil when none can.
func (a *App) vendorReconciler(store ledger.Store) *reconcile.Reconciler {
	finders := map[string]reconcile.Finder{}
	for name, rt := range a.vendors {
		switch f, ok := rt.vendor.(reconcile.Finder); {
		case rt.notConfigured != "":
		case ok:
			finders[name] = f
		case rt.job != nil && rt.job.Finder != nil:
			finders[name] = rt.job.Finder // Twilio: asked with its price reconciler's credentials
		}
	}
	if len(finders) == 0 {
		return nil
	}
	rc := &reconcile.Reconciler{
		Store:           store,
		Finders:         finders,
		StaleAfter:      time.Duration(a.StaleReservationAfter),
		NotFoundAfter:   time.Duration(a.ReconcileNotFoundAfter),
		UnknownAfterMax: time.Duration(a.UnknownAfterMax),
		Interval:        time.Duration(a.ReconcileInterval),
		Logger:          a.logger,
		Escalate: func(ctx context.Context, c ledger.Call, reason string, now time.Time) {
			a.alerts.CallUnresolved(ctx, alerts.CallUnknownData{
				CallID: c.CallID, KeyID: c.KeyID, RunLabel: c.RunLabel, Vendor: c.Vendor, Method: c.Method,
				Path: c.Path, Outcome: c.Outcome, StatusCode: c.StatusCode, ReservedUSD: c.Reserved, Reason: reason,
			}, now)
		},
	}
	if l, ok := store.(ledger.Locker); ok {
		rc.Lock = func(ctx context.Context) (func(), bool, error) { return l.TryLock(ctx, "reconcile") }
	}
	return rc
}

// retention is the job that deletes calls older than retain_calls, nil
// when it is not set. A fleet's nodes take turns under a ledger lock.
func (a *App) retention(store ledger.Store) (*ledger.Retention, error) {
	if a.RetainCalls == 0 {
		return nil, nil
	}
	r, ok := store.(ledger.Retainer)
	if !ok {
		return nil, fmt.Errorf("retain_calls: the %s ledger cannot delete calls", ledger.RedactDSN(a.dsn))
	}
	deleted, err := register(a.ctx.GetMetricsRegistry(), newDeletedCallsMetric())
	if err != nil {
		return nil, fmt.Errorf("retain_calls: %w", err)
	}
	ret := &ledger.Retention{Store: r, Keep: time.Duration(a.RetainCalls), Logger: a.logger,
		Deleted: func(n int) { deleted.Add(float64(n)) }}
	if l, ok := store.(ledger.Locker); ok {
		ret.Lock = func(ctx context.Context) (func(), bool, error) { return l.TryLock(ctx, "retention") }
	}
	return ret, nil
}

// Validate checks the configuration.
func (a *App) Validate() error {
	if a.DefaultTTL > a.MaxTTL {
		return fmt.Errorf("default_ttl %s is longer than max_ttl %s", time.Duration(a.DefaultTTL), time.Duration(a.MaxTTL))
	}
	notFound := cmp.Or(time.Duration(a.ReconcileNotFoundAfter), reconcile.DefaultNotFoundAfter)
	if notFound > reconcile.MaxNotFoundAfter {
		return fmt.Errorf("reconcile_not_found_after %s is longer than %s: the reconciler looks for a call's objects in a window that ends then",
			notFound, reconcile.MaxNotFoundAfter)
	}
	if limit := cmp.Or(time.Duration(a.UnknownAfterMax), reconcile.DefaultUnknownAfterMax); limit <= notFound {
		return fmt.Errorf("unknown_after_max %s must be longer than reconcile_not_found_after %s", limit, notFound)
	}
	if a.RetainCalls < 0 {
		return fmt.Errorf("retain_calls %s is negative", time.Duration(a.RetainCalls))
	}
	if a.RetainCalls != 0 {
		if err := (&ledger.Retention{Keep: time.Duration(a.RetainCalls)}).Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Stop implements caddy.App: it stops the background jobs and waits for
// them, so none outlives its config (reload, shutdown).
func (a *App) Stop() error {
	if a.jobs != nil {
		a.jobs.stop()
	}
	return nil
}

// Cleanup releases this config's hold on the shared ledger.
func (a *App) Cleanup() error {
	if a.jobs != nil {
		a.jobs.stop()
	}
	if a.ledger != nil {
		return a.ledger.release(a.ledgerUse)
	}
	return nil
}

func (a *App) vendorNames() []string {
	names := make([]string, 0, len(a.Vendors))
	for name := range a.Vendors {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
