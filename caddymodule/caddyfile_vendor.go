package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/money"
)

// unmarshalCaddyfile reads a vendor block; the dispenser is on its name.
func (vc *VendorConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "kind":
			if !d.NextArg() {
				return d.ArgErr()
			}
			vc.Kind = d.Val()
			switch vc.Kind {
			case "stripe", "twilio", "resend", "declared":
			default:
				return d.Errf("unknown vendor kind '%s' (want stripe, twilio, resend or declared)", vc.Kind)
			}
		case "secret_key":
			if !d.NextArg() {
				return d.ArgErr()
			}
			vc.SecretKey = d.Val()
		case "unknown_cost":
			if !d.NextArg() {
				return d.ArgErr()
			}
			switch d.Val() {
			case "deny":
				vc.UnknownCost = "deny"
			case "reserve":
				vc.UnknownCost = "reserve"
				if !d.NextArg() {
					return d.Errf("unknown_cost reserve needs an amount in USD")
				}
				amt, err := money.ParseUSD(d.Val())
				if err != nil || amt <= 0 {
					return d.Errf("unknown_cost reserve: invalid amount '%s'", d.Val())
				}
				vc.UnknownCostUSD = amt
			default:
				return d.Errf("unknown_cost must be deny or reserve, not '%s'", d.Val())
			}
		case "rate":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("rate needs a currency and dollars per unit, e.g. 'rate jpy 0.0067'")
			}
			if _, err := money.ParseRate(args[1]); err != nil {
				return d.Errf("rate %s: invalid rate '%s'", args[0], args[1])
			}
			if vc.Rates == nil {
				vc.Rates = map[string]string{}
			}
			vc.Rates[args[0]] = args[1]
			continue
		default:
			return d.Errf("unrecognized vendor option '%s'", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}
