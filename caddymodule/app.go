// Package caddymodule registers Keybrake's Caddy modules: the keybrake app
// (global option), the http.handlers.keybrake gate and the
// http.handlers.keybrake_api key API. It is the only package that imports
// Caddy; the rest of Keybrake is plain Go.
package caddymodule

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/twilio"
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
	// it reserves. Default: 5s.
	KeyCacheTTL caddy.Duration `json:"key_cache_ttl,omitempty"`

	// StaleReservationAfter is how long a call may stay reserved, with no
	// settlement, before the sweeper marks it unknown for reconciliation
	// (its node stopped mid-call). The money stays reserved. Default: 15m.
	StaleReservationAfter caddy.Duration `json:"stale_reservation_after,omitempty"`

	// Vendors declares the vendors by name (stripe, twilio, resend, or any
	// name with kind "declared").
	Vendors map[string]*VendorConfig `json:"vendors,omitempty"`

	// Webhooks receive alert events from the ledger's outbox. Default:
	// none (events are not recorded).
	Webhooks []*WebhookConfig `json:"webhooks,omitempty"`

	// WebhookDelivery tunes retries and polling of the webhook sender.
	WebhookDelivery *WebhookDelivery `json:"webhook_delivery,omitempty"`

	ledger  *ledgerHandle
	vendors map[string]*vendorRuntime
	tokens  []string
	logger  *zap.Logger
	now     func() time.Time
	// jobs are the background jobs (Twilio price reconcilers) that run
	// while this config is live: from Start to Stop.
	jobs *backgroundJobs
	// alerts writes events to the outbox; nil without webhooks (its
	// methods then do nothing).
	alerts *alerts.Alerter
}

// vendorRuntime is a provisioned vendor.
type vendorRuntime struct {
	vendor      vendors.Vendor
	unknownCost gate.UnknownCostPolicy
	// missing names the unset secrets of a vendor declared without them: it
	// then refuses calls with a clear 503 rather than keeping Caddy from
	// starting, so the other vendors still work.
	missing string
	// missingEnv names the environment variables behind the missing
	// settings ({env.NAME} placeholders), for the 503's message.
	missingEnv []string
	// reconciler, for a Twilio vendor, settles its provisional prices in
	// the background; nil when off or when the vendor has no secrets.
	reconciler *twilio.Reconciler
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "keybrake",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens (or reuses) the ledger and builds the vendors.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.now = time.Now
	repl := caddy.NewReplacer()

	dsn := repl.ReplaceAll(a.Ledger, "")
	if dsn == "" {
		dsn = ledger.DefaultDSN
	}
	if a.MaxTTL == 0 {
		a.MaxTTL = caddy.Duration(24 * time.Hour)
	}
	if a.DefaultTTL == 0 {
		a.DefaultTTL = caddy.Duration(time.Hour)
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
		rt, err := a.Vendors[name].build(name, repl)
		if err != nil {
			return fmt.Errorf("vendor %s: %w", name, err)
		}
		if rt.missing != "" {
			a.logger.Warn("vendor has no secret: its calls are refused with 503 until it is set",
				zap.String("vendor", name), zap.String("missing", rt.missing))
		}
		a.vendors[name] = rt
	}

	h, err := openLedger(ctx, dsn, time.Duration(a.KeyCacheTTL), a.logger)
	if err != nil {
		return err
	}
	a.ledger = h
	a.jobs = &backgroundJobs{}
	for _, name := range a.vendorNames() {
		if rc := a.vendors[name].reconciler; rc != nil {
			a.jobs.add(rc, h.store, a.logger)
		}
	}
	if err := a.provisionAlerts(repl); err != nil {
		return err
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
	return nil
}

// Validate checks the configuration.
func (a *App) Validate() error {
	if a.DefaultTTL > a.MaxTTL {
		return fmt.Errorf("default_ttl %s is longer than max_ttl %s", time.Duration(a.DefaultTTL), time.Duration(a.MaxTTL))
	}
	return nil
}

// Start implements caddy.App: it starts the background jobs (Twilio price
// reconcilers); the rest of the work happens in Provision and handlers.
func (a *App) Start() error {
	if a.jobs != nil {
		a.jobs.start()
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
		return a.ledger.release()
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
