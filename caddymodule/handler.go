package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/vendors"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the gate on a vendor route: it checks the vault key, reserves
// the call's cost, swaps in the real secret and lets the next handler
// (reverse_proxy) forward the call, then settles from the response.
type Handler struct {
	// Vendor names a vendor declared in the keybrake app (stripe, twilio,
	// resend, or a declared one). Required.
	Vendor string `json:"vendor"`

	// MaxRequestBody bounds the request body read to price a call, in
	// bytes. Default: 1 MiB.
	MaxRequestBody int64 `json:"max_request_body,omitempty"`

	gate   *gate.Gate
	vendor *vendorRuntime
	app    *App
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.keybrake",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds the gate on the app's shared ledger.
func (h *Handler) Provision(ctx caddy.Context) error {
	appIface, err := ctx.App("keybrake")
	if err != nil {
		return fmt.Errorf("loading keybrake app: %w", err)
	}
	app := appIface.(*App)
	rt, ok := app.vendors[h.Vendor]
	if !ok {
		return fmt.Errorf("vendor %q is not declared in the keybrake global option (declared: %v)", h.Vendor, app.vendorNames())
	}
	h.vendor = rt
	var observe gate.Observer
	reg := ctx.GetMetricsRegistry()
	if reg != nil {
		m, err := newMetrics(reg)
		if err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		observe = m.observe
	}
	h.app = app
	logger := ctx.Logger()
	// The gate is built on the ledger when the app starts (never for
	// `caddy validate`).
	app.whenLedger(func(l *ledgerHandle) error {
		g, err := gate.New(gate.Config{
			Vendor:         rt.vendor,
			Store:          l.store,
			Keys:           l.keys,
			UnknownCost:    rt.unknownCost,
			NotConfigured:  rt.notConfigured,
			MaxRequestBody: h.MaxRequestBody,
			Logger:         logger,
			Observe:        observe,
			DialFailed:     dialFailed,
			Alerts:         app.alerts,
			Approvals:      l.approvals,
			// The client's answer goes before its settlement, which
			// commits in the ledger's next batch.
			SettleAfterResponse: true,
		})
		h.gate = g
		if b, ok := l.store.(ledger.Batcher); ok && reg != nil && err == nil {
			err = registerBatchMetrics(reg, b)
		}
		return err
	})
	return nil
}

// dialFailed tells reverse_proxy's errors of connecting to an upstream
// (dialing, or writing the PROXY protocol header), before any request byte.
func dialFailed(err error) bool {
	var de reverseproxy.DialError
	return errors.As(err, &de)
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.Vendor == "" {
		return fmt.Errorf("vendor is required")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if err := h.app.await(r.Context()); err != nil {
		h.vendor.vendor.WriteError(w, &vendors.Error{
			Status:    http.StatusServiceUnavailable,
			Code:      "keybrake_ledger_unavailable",
			Message:   "Keybrake is starting and cannot reach its ledger yet, so it forwards nothing. Try again shortly.",
			Retryable: true,
		})
		return nil
	}
	return h.gate.ServeHTTP(w, r, next.ServeHTTP)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
