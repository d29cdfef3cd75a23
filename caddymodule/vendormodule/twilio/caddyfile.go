package twiliomodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// CaddyfileOptions implements vendormodule.Module.
func (m *Module) CaddyfileOptions() []vendormodule.Option {
	return []vendormodule.Option{
		vendormodule.StringOption("account_sid", &m.AccountSID),
		vendormodule.StringOption("auth_token", &m.AuthToken),
		vendormodule.StringOption("api_key", &m.APIKey),
		vendormodule.USDOption("call_max", &m.CallMaxUSD),
		{Name: "message_rate", Repeatable: true, Parse: m.unmarshalMessageRate},
		{Name: "default_message_rate", Parse: m.unmarshalDefaultMessageRate},
		{Name: "voice_rate", Repeatable: true, Parse: m.unmarshalVoiceRate},
		vendormodule.USDOption("default_voice_rate", &m.DefaultVoiceRate),
		{Name: "twiml_url", Repeatable: true, Parse: func(d *caddyfile.Dispenser) error {
			u, err := vendormodule.OneArg(d)
			m.TwiMLURLs = append(m.TwiMLURLs, u)
			return err
		}},
		{Name: "reconcile", Parse: m.unmarshalReconcile},
	}
}

// UnmarshalCaddyfile reads a vendor block of kind twilio.
//
// Syntax:
//
//	vendor <name> {
//		kind         twilio
//		upstream     <url>
//		unknown_cost deny|reserve <usd>
//		account_sid  <AC…>
//		auth_token   <token>
//		api_key      <SK…>
//		call_max     <usd>
//		message_rate <+prefix> [sms <usd>] [mms <usd>] | unknown
//		default_message_rate [sms <usd>] [mms <usd>]
//		voice_rate   <+prefix> <usd_per_minute> | unknown
//		default_voice_rate <usd_per_minute>
//		twiml_url    <url_prefix>
//		reconcile    off | {
//			min_age       <duration>
//			interval      <duration>
//			batch         <n>
//			give_up_after <duration>
//		}
//	}
//
// message_rate and voice_rate may be given once per prefix, twiml_url more
// than once.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return vendormodule.UnmarshalBlock(d, m)
}

// unmarshalMessageRate reads message_rate <+prefix> [sms <usd>] [mms <usd>]
// | unknown.
func (m *Module) unmarshalMessageRate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Errf("message_rate needs a prefix and prices, e.g. 'message_rate +44 sms 0.0524 mms 0.10' or 'message_rate +1787 unknown'")
	}
	prefix := args[0]
	_, given := m.MessageRates[prefix]
	if err := checkPrefix(d, "message_rate", prefix, given); err != nil {
		return err
	}
	r, err := parseRateArgs(d, "message_rate", args[1:], true)
	if err != nil {
		return err
	}
	if m.MessageRates == nil {
		m.MessageRates = twilio.RateTable{}
	}
	m.MessageRates[prefix] = r
	return nil
}

// unmarshalDefaultMessageRate reads default_message_rate [sms <usd>]
// [mms <usd>].
func (m *Module) unmarshalDefaultMessageRate(d *caddyfile.Dispenser) error {
	r, err := parseRateArgs(d, "default_message_rate", d.RemainingArgs(), false)
	if err == nil {
		m.DefaultMessageRate = &r
	}
	return err
}

// parseRateArgs reads [sms <usd>] [mms <usd>], or unknown when allowed.
func parseRateArgs(d *caddyfile.Dispenser, opt string, args []string, unknownOK bool) (twilio.Rate, error) {
	var r twilio.Rate
	if len(args) == 1 && args[0] == "unknown" {
		if !unknownOK {
			return r, d.Errf("%s cannot be unknown: leave it out instead", opt)
		}
		r.Unknown = true
		return r, nil
	}
	if len(args) == 0 || len(args)%2 != 0 {
		return r, d.Errf("%s: want 'sms <usd>' and/or 'mms <usd>'", opt)
	}
	seen := map[string]bool{}
	for i := 0; i < len(args); i += 2 {
		k, v := args[i], args[i+1]
		if k != "sms" && k != "mms" {
			return r, d.Errf("%s: unknown message kind '%s' (want sms or mms)", opt, k)
		}
		if seen[k] {
			return r, d.Errf("%s: %s is given twice", opt, k)
		}
		seen[k] = true
		amt, err := money.ParseUSD(v)
		if err != nil || amt <= 0 {
			return r, d.Errf("%s: invalid %s price '%s' (want dollars, e.g. 0.0083)", opt, k, v)
		}
		if k == "sms" {
			r.SMS = amt
		} else {
			r.MMS = amt
		}
	}
	return r, nil
}

// unmarshalVoiceRate reads voice_rate <+prefix> <usd_per_minute> | unknown.
func (m *Module) unmarshalVoiceRate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("voice_rate needs a prefix and a price per minute, e.g. 'voice_rate +44 0.0150' or 'voice_rate +1907 unknown'")
	}
	prefix := args[0]
	_, given := m.VoiceRates[prefix]
	if err := checkPrefix(d, "voice_rate", prefix, given); err != nil {
		return err
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
	if m.VoiceRates == nil {
		m.VoiceRates = twilio.VoiceRateTable{}
	}
	m.VoiceRates[prefix] = r
	return nil
}

// checkPrefix checks the E.164 prefix of a message_rate or voice_rate
// line, which may be given once per prefix.
func checkPrefix(d *caddyfile.Dispenser, opt, prefix string, given bool) error {
	if !validE164Prefix(prefix) {
		return d.Errf("%s: prefix '%s' must be + and 1 to 15 digits", opt, prefix)
	}
	if given {
		return d.Errf("%s %s is given twice", opt, prefix)
	}
	return nil
}

func validE164Prefix(p string) bool {
	if len(p) < 2 || len(p) > 16 || p[0] != '+' {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// unmarshalReconcile reads reconcile off | { … }.
func (m *Module) unmarshalReconcile(d *caddyfile.Dispenser) error {
	rc := &ReconcileConfig{}
	if d.NextArg() {
		if d.Val() != "off" {
			return d.Errf("reconcile takes 'off' or a block, not '%s'", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		if d.NextBlock(d.Nesting()) {
			return d.Errf("reconcile off takes no block")
		}
		m.Reconcile = &ReconcileConfig{Off: true}
		return nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("reconcile: option '%s' is given twice", opt)
		}
		seen[opt] = true
		var err error
		switch opt {
		case "min_age":
			rc.MinAge, err = vendormodule.DurationArg(d)
		case "interval":
			rc.Interval, err = vendormodule.DurationArg(d)
		case "give_up_after":
			rc.GiveUpAfter, err = vendormodule.DurationArg(d)
		case "batch":
			var s string
			if s, err = vendormodule.OneArg(d); err == nil {
				n, convErr := strconv.Atoi(s)
				if convErr != nil || n < 1 || n > 10000 {
					return d.Errf("reconcile: batch '%s' must be a number from 1 to 10000", s)
				}
				rc.Batch = n
			}
		default:
			return d.Errf("unrecognized reconcile option '%s'", opt)
		}
		if err != nil {
			return err
		}
	}
	m.Reconcile = rc
	return nil
}
