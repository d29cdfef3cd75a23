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
)

func init() {
	caddy.RegisterModule(APIHandler{})
}

// APIHandler mounts the key API under /vault/: issue, read, list and revoke
// vault keys, the audit log and run summaries. Requests outside /vault/
// pass to the next handler.
type APIHandler struct {
	api *keyapi.Handler
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
	keys := app.ledger.keys
	h.api, err = keyapi.New(keyapi.Config{
		Store:      app.ledger.store,
		Tokens:     app.tokens,
		Vendors:    app.vendorNames(),
		MaxTTL:     time.Duration(app.MaxTTL),
		DefaultTTL: time.Duration(app.DefaultTTL),
		OnRevoke: func(keyID string) {
			keys.Invalidate(keyID)
			// Written before the key API answers: revoked means the
			// event is in the outbox.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			app.alerts.RevokedID(ctx, keyID, time.Now())
		},
		Logger: ctx.Logger(),
	})
	if err != nil {
		return fmt.Errorf("building key api: %w", err)
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *APIHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !strings.HasPrefix(r.URL.Path, "/vault/") {
		return next.ServeHTTP(w, r)
	}
	h.api.ServeHTTP(w, r)
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*APIHandler)(nil)
	_ caddyhttp.MiddlewareHandler = (*APIHandler)(nil)
)
