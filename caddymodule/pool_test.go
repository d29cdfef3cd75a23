package caddymodule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

func provisionApp(t *testing.T, dsn string) *App {
	t.Helper()
	return startApp(t, &App{Ledger: dsn, APITokens: []string{"{env.KEYBRAKE_TEST_UNSET_TOKEN}"}})
}

// startApp provisions, validates and starts app as a config load does.
func startApp(t *testing.T, app *App) *App {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := app.Provision(ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	if err := app.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if err := app.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = app.Stop() })
	return app
}

// TestProvisionLeavesLedgerAlone: provisioning and validating a config, all
// `caddy validate` does, neither creates nor opens the ledger; Start does.
func TestProvisionLeavesLedgerAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	app := &App{Ledger: "sqlite:" + path}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("provision created the ledger file: %v", err)
	}
	if err := app.Cleanup(); err != nil {
		t.Fatal(err)
	}
}

// TestLedgerSurvivesReload: a reload provisions the new config before the
// old one is cleaned up; with the same DSN they share one ledger, which
// stays open until the last config lets go of it.
func TestLedgerSurvivesReload(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "ledger.db")
	oldCfg := provisionApp(t, dsn)
	newCfg := provisionApp(t, dsn)
	if oldCfg.ledger != newCfg.ledger {
		t.Fatal("a reload with the same ledger opened a second one")
	}
	if len(newCfg.tokens) != 0 {
		t.Fatalf("an unset token placeholder became a token: %q", newCfg.tokens)
	}
	if err := oldCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := newCfg.ledger.store.Ping(ctx); err != nil {
		t.Fatalf("ledger closed by the old config's cleanup: %v", err)
	}
	if err := newCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := newCfg.ledger.store.Ping(ctx); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("ledger still open after the last config let go: %v", err)
	}
}

func TestAppDefaults(t *testing.T) {
	app := provisionApp(t, "sqlite:"+filepath.Join(t.TempDir(), "l.db"))
	defer app.Cleanup()
	if time.Duration(app.MaxTTL) != 24*time.Hour || time.Duration(app.DefaultTTL) != time.Hour ||
		time.Duration(app.KeyCacheTTL) != ledger.DefaultKeyCacheTTL {
		t.Fatalf("defaults: max %v default %v cache %v", app.MaxTTL, app.DefaultTTL, app.KeyCacheTTL)
	}
}

func TestAppRejectsDefaultTTLOverMax(t *testing.T) {
	app := &App{MaxTTL: caddy.Duration(time.Hour), DefaultTTL: caddy.Duration(2 * time.Hour)}
	if err := app.Validate(); err == nil {
		t.Fatal("default_ttl over max_ttl accepted")
	}
}

// TestAppRetainCalls: retain_calls is off by default and, when set, at
// least ledger.MinRetainCalls.
func TestAppRetainCalls(t *testing.T) {
	for keep, ok := range map[time.Duration]bool{0: true, ledger.MinRetainCalls: true, 400 * 24 * time.Hour: true,
		24 * time.Hour: false, -time.Hour: false} {
		app := &App{MaxTTL: caddy.Duration(time.Hour), DefaultTTL: caddy.Duration(time.Hour), RetainCalls: caddy.Duration(keep)}
		if err := app.Validate(); (err == nil) != ok {
			t.Errorf("retain_calls %s: Validate() = %v; want ok %v", keep, err, ok)
		}
	}
}

// TestReloadAppliesKeyCacheTTL: a reload that keeps the ledger but changes
// key_cache_ttl applies the new TTL to the pooled cache, and drops what was
// cached under the old one; a reload that fails (the new config cleaned up
// while the old one runs on) gives the old config its TTL back.
func TestReloadAppliesKeyCacheTTL(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "ledger.db")
	oldCfg := startApp(t, &App{Ledger: dsn, KeyCacheTTL: caddy.Duration(time.Hour)})
	h := oldCfg.ledger
	if h.keys.TTL() != time.Hour {
		t.Fatalf("cache TTL %v; want the config's 1h", h.keys.TTL())
	}

	ctx := context.Background()
	now := time.Now()
	total := 10 * money.PerDollar
	k := ledger.Key{ID: "vkReloadTTL000000000001", Hash: ledger.HashSecret("reload ttl"), Vendor: "stripe",
		TotalCap: &total, AllowedEndpoints: []string{"POST /v1/payment_intents"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := h.store.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	allowlist := func() string {
		t.Helper()
		got, err := h.keys.Lookup(ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		h.keys.Wait()
		return strings.Join(got.AllowedEndpoints, ",")
	}
	allowlist()
	// Changed in the ledger behind the cache's back: the cache still
	// serves what it holds.
	if _, err := h.store.PatchKey(ctx, k.ID, ledger.KeyPatch{AllowedEndpoints: []string{"GET /v1/customers/*"}}); err != nil {
		t.Fatal(err)
	}
	if got := allowlist(); got != "POST /v1/payment_intents" {
		t.Fatalf("cached allowlist %q; the test needs the cache to hold the old key", got)
	}

	newCfg := startApp(t, &App{Ledger: dsn, KeyCacheTTL: caddy.Duration(2 * time.Second)})
	if newCfg.ledger != h {
		t.Fatal("the reload opened a second ledger")
	}
	if h.keys.TTL() != 2*time.Second {
		t.Fatalf("cache TTL %v after the reload; want the new config's 2s", h.keys.TTL())
	}
	if got := allowlist(); got != "GET /v1/customers/*" {
		t.Fatalf("allowlist %q after the reload; want the ledger's, not one cached under the old TTL", got)
	}

	if err := newCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if h.keys.TTL() != time.Hour {
		t.Fatalf("cache TTL %v after the new config let go; want the running config's 1h", h.keys.TTL())
	}
	if err := oldCfg.Cleanup(); err != nil {
		t.Fatal(err)
	}
}

// TestReloadAppliesLogger: the pooled ledger logs through the logger of
// the config whose settings apply, the latest one started, and again the
// old one's when the latest lets go first.
func TestReloadAppliesLogger(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for _, latestLetsGoFirst := range []bool{false, true} {
		dsn := "sqlite:" + filepath.Join(t.TempDir(), "ledger.db")
		oldCore, oldLogs := observer.New(zap.InfoLevel)
		newCore, newLogs := observer.New(zap.InfoLevel)
		hOld, oldUse, err := openLedger(ctx, dsn, 0, zap.New(oldCore))
		if err != nil {
			t.Fatal(err)
		}
		hNew, newUse, err := openLedger(ctx, dsn, 0, zap.New(newCore))
		if err != nil {
			t.Fatal(err)
		}
		first, second := oldUse, newUse
		want, other := newLogs, oldLogs
		if latestLetsGoFirst {
			first, second = newUse, oldUse
			want, other = oldLogs, newLogs
		}
		if err := hNew.release(first); err != nil {
			t.Fatal(err)
		}
		// The last release closes the ledger, which logs it.
		if err := hOld.release(second); err != nil {
			t.Fatal(err)
		}
		if want.FilterMessage("ledger closed").Len() != 1 || other.FilterMessage("ledger closed").Len() != 0 {
			t.Fatalf("latest lets go first %v: \"ledger closed\" logged %d times to the config holding the ledger, %d to the other",
				latestLetsGoFirst, want.FilterMessage("ledger closed").Len(), other.FilterMessage("ledger closed").Len())
		}
	}
}
