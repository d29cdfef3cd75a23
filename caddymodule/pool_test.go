package caddymodule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/keybrake/keybrake/ledger"
)

func provisionApp(t *testing.T, dsn string) *App {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	app := &App{Ledger: dsn, APITokens: []string{"{env.KEYBRAKE_TEST_UNSET_TOKEN}"}}
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
