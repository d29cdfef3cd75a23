package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/keybrake/keybrake/keyapi"
	"github.com/keybrake/keybrake/ledger"
)

func init() {
	caddy.RegisterModule(APIHandler{})
}

// APIHandler mounts the key API under /vault/: issue, read, list and revoke
// vault keys, the audit log and run summaries. Requests outside /vault/
// pass to the next handler.
type APIHandler struct {
	api *keyapi.Handler
	app *App
}

// CaddyModule returns the Caddy module information.
func (APIHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.keybrake_api",
		New: func() caddy.Module { return new(APIHandler) },
	}
}

// Provision builds the key API on the app's shared ledger.
func (h *APIHandler) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("keybrake")
	if err != nil {
		return fmt.Errorf("loading keybrake app: %w", err)
	}
	app := appIface.(*App)
	h.app = app
	logger := ctx.Logger()
	// Built on the ledger when the app starts (never for `caddy validate`).
	app.whenLedger(func(l *ledgerHandle) error {
		api, err := keyapi.New(keyapi.Config{
			Store:           l.store,
			Tokens:          app.tokens,
			Vendors:         app.vendorNames(),
			MaxTTL:          time.Duration(app.MaxTTL),
			DefaultTTL:      time.Duration(app.DefaultTTL),
			StaleAfter:      time.Duration(app.StaleReservationAfter),
			Subjects:        app.vendorSubjects(),
			DefaultRules:    app.defaultRules(),
			VaultKeyReaders: app.vaultKeyReaders(),
			OnRevoke: func(keyID string) {
				l.keys.Invalidate(keyID)
				// Written before the key API answers: revoked means the
				// event is in the outbox.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				app.alerts.RevokedID(ctx, keyID, time.Now())
			},
			OnApprovalDecided: func(ctx context.Context, a ledger.Approval) {
				app.alerts.ApprovalDecided(ctx, a, time.Now())
			},
			Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("building key api: %w", err)
		}
		h.api = api
		return nil
	})
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !strings.HasPrefix(r.URL.Path, "/vault/") {
		return next.ServeHTTP(w, r)
	}
	if err := h.app.await(r.Context()); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"ledger_unavailable","message":"Keybrake is starting; try again shortly"}}` + "\n"))
		return nil
	}
	h.api.ServeHTTP(w, r)
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*APIHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
)
