package caddymodule

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/keybrake/keybrake/caddymodule/vendormodule"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("keybrake", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("keybrake", parseHandler)
	httpcaddyfile.RegisterHandlerDirective("keybrake_api", parseAPIHandler)
	httpcaddyfile.RegisterDirectiveOrder("keybrake", httpcaddyfile.Before, "reverse_proxy")
	httpcaddyfile.RegisterDirectiveOrder("keybrake_api", httpcaddyfile.Before, "reverse_proxy")
}

func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "keybrake", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the keybrake app from Caddyfile tokens.
//
// Syntax:
//
//	keybrake {
//		ledger        <postgres://…|sqlite:PATH>
//		api_token     <token>
//		max_ttl       <duration>
//		default_ttl   <duration>
//		key_cache_ttl <duration>
//		stale_reservation_after <duration>
//		reconcile_interval <duration>
//		reconcile_not_found_after <duration>
//		unknown_after_max <duration>
//		retain_calls <duration>
//		vendor <name> {
//			kind         <stripe|twilio|resend|declared|…>
//			upstream     <url>
//			unknown_cost deny|reserve <usd>
//			…            (the kind's options: see its module's UnmarshalCaddyfile)
//		}
//		webhook <name> {
//			url        <url>
//			secret     <signing secret>
//			format     keybrake|slack
//			thresholds <percent>...
//			events     <type>...
//		}
//		webhook_delivery {
//			interval|timeout|min_backoff|max_backoff|give_up_after <duration>
//		}
//		dashboard_url <url>
//		pin_env <NAME>...
//	}
//
// api_token may be given more than once; vendor and webhook once per name.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "ledger":
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.Ledger = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		case "api_token":
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.APITokens = append(a.APITokens, d.Val())
			if d.NextArg() {
				return d.ArgErr()
			}
		case "max_ttl", "default_ttl", "key_cache_ttl", "stale_reservation_after",
			"reconcile_interval", "reconcile_not_found_after", "unknown_after_max", "retain_calls":
			opt := d.Val()
			dur, err := vendormodule.DurationArg(d)
			if err != nil {
				return err
			}
			switch opt {
			case "max_ttl":
				a.MaxTTL = dur
			case "default_ttl":
				a.DefaultTTL = dur
			case "stale_reservation_after":
				a.StaleReservationAfter = dur
			case "reconcile_interval":
				a.ReconcileInterval = dur
			case "reconcile_not_found_after":
				a.ReconcileNotFoundAfter = dur
			case "unknown_after_max":
				a.UnknownAfterMax = dur
			case "retain_calls":
				a.RetainCalls = dur
			default:
				a.KeyCacheTTL = dur
			}
		case "vendor":
			if a.Vendors == nil {
				a.Vendors = map[string]json.RawMessage{}
			}
			if err := unmarshalVendor(d, a.Vendors); err != nil {
				return err
			}
		case "webhook":
			w, err := unmarshalWebhook(d)
			if err != nil {
				return err
			}
			for _, other := range a.Webhooks {
				if other.Name == w.Name {
					return d.Errf("webhook %s is declared twice", w.Name)
				}
			}
			a.Webhooks = append(a.Webhooks, w)
		case "pin_env":
			if a.PinnedEnv == nil {
				a.PinnedEnv = map[string]*string{}
			}
			if err := pinEnv(d, a.PinnedEnv); err != nil {
				return err
			}
		case "webhook_delivery":
			wd, err := unmarshalWebhookDelivery(d)
			if err != nil {
				return err
			}
			a.WebhookDelivery = wd
		case "dashboard_url":
			if !d.NextArg() {
				return d.ArgErr()
			}
			a.DashboardURL = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unrecognized keybrake option '%s'", d.Val())
		}
	}
	return nil
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the gate from Caddyfile tokens.
//
// Syntax:
//
//	keybrake <vendor> {
//		max_request_body <bytes>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if !d.NextArg() {
		return d.Errf("keybrake needs a vendor name, e.g. 'keybrake stripe'")
	}
	h.Vendor = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "max_request_body":
			if !d.NextArg() {
				return d.ArgErr()
			}
			size, err := parseSize(d.Val())
			if err != nil {
				return d.Errf("invalid max_request_body '%s': %v", d.Val(), err)
			}
			h.MaxRequestBody = size
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unrecognized keybrake option '%s'", d.Val())
		}
	}
	return nil
}

func parseSize(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || s[0] < '0' || s[0] > '9' {
		return 0, errors.New("want a positive number of bytes")
	}
	return n, nil
}

func parseAPIHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(APIHandler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the key API from Caddyfile tokens. It takes no
// options: tokens and limits live in the keybrake global option.
//
// Syntax:
//
//	keybrake_api
func (h *APIHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("keybrake_api takes no options; configure it in the keybrake global option")
	}
	return nil
}

// Interface guards.
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*APIHandler)(nil)
)
