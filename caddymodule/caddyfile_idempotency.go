package caddymodule

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors/declared"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// parseIdempotency reads a declared vendor's idempotency block; the
// dispenser is on "idempotency".
//
// Syntax:
//
//	idempotency <header> {
//		window       <duration>
//		methods      <METHOD>...
//		paths        <pattern>...
//		scope_header <Name>...
//	}
//
// window is required (the vendor's documented replay window, at most
// 720h); methods default to POST; paths default to every path (give the
// vendor's documented ones, e.g. /emails); scope_header may be given more
// than once.
func parseIdempotency(d *caddyfile.Dispenser) (*declared.IdempotencyConfig, error) {
	header, err := oneArg(d)
	if err != nil {
		return nil, d.Errf("idempotency needs one header name, e.g. 'idempotency Idempotency-Key { window 24h }'")
	}
	c := &declared.IdempotencyConfig{Header: header}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] && opt != "scope_header" {
			return nil, d.Errf("idempotency: option '%s' is given twice", opt)
		}
		seen[opt] = true
		switch opt {
		case "window":
			s, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			w, err := caddy.ParseDuration(s)
			if err != nil || w <= 0 {
				return nil, d.Errf("idempotency: window '%s' must be a positive duration, e.g. 24h", s)
			}
			c.Window = declared.Duration(w)
		case "methods":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			for _, m := range args {
				if err := allowlist.CheckMethod(m); err != nil {
					return nil, d.Errf("idempotency: unknown method '%s'", m)
				}
			}
			c.Methods = args
		case "paths":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			for _, p := range args {
				if err := allowlist.CheckPath(p); err != nil {
					return nil, d.Errf("idempotency: path '%s' must be a pattern such as /emails or /orders/*", p)
				}
			}
			c.Paths = args
		case "scope_header":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			c.ScopeHeaders = append(c.ScopeHeaders, args...)
		default:
			return nil, d.Errf("unrecognized idempotency option '%s' (want window, methods, paths or scope_header)", opt)
		}
	}
	if time.Duration(c.Window) == 0 {
		return nil, d.Errf("idempotency %s: window is required: how long the vendor keeps a key, e.g. 'window 24h'", header)
	}
	return c, nil
}

// parseVoiceRate reads voice_rate <+prefix> <usd_per_minute> | unknown.
func (vc *VendorConfig) parseVoiceRate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("voice_rate needs a prefix and a price per minute, e.g. 'voice_rate +44 0.0150' or 'voice_rate +1907 unknown'")
	}
	prefix := args[0]
	if !validE164Prefix(prefix) {
		return d.Errf("voice_rate: prefix '%s' must be + and 1 to 15 digits", prefix)
	}
	if _, dup := vc.VoiceRates[prefix]; dup {
		return d.Errf("voice_rate %s is given twice", prefix)
	}
	var r twilio.VoiceRate
	if args[1] == "unknown" {
		r.Unknown = true
	} else {
		amt, err := money.ParseUSD(args[1])
		if err != nil || amt <= 0 {
			return d.Errf("voice_rate %s: invalid price '%s' (want dollars per minute, e.g. 0.0140)", prefix, args[1])
		}
		r.PerMinute = amt
	}
	if vc.VoiceRates == nil {
		vc.VoiceRates = twilio.VoiceRateTable{}
	}
	vc.VoiceRates[prefix] = r
	return nil
}
