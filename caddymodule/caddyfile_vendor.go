package caddymodule

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/declared"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// kindOptions lists, per kind, the Caddyfile options it takes besides
// kind, upstream and unknown_cost, which every kind takes.
var kindOptions = map[string][]string{
	kindStripe:   {"secret_key", "rate"},
	kindTwilio:   {"account_sid", "auth_token", "api_key", "call_max", "message_rate", "default_message_rate", "voice_rate", "default_voice_rate", "twiml_url", "reconcile"},
	kindResend:   {"secret_key", "per_email"},
	kindDeclared: {"secret_key", "credential", "inject", "errors", "free_methods", "endpoint", "idempotency"},
}

// repeatable options may be given more than once.
var repeatable = map[string]bool{"rate": true, "message_rate": true, "voice_rate": true, "twiml_url": true, "endpoint": true}

// unmarshalCaddyfile reads a vendor block; the dispenser is on its name.
//
// Syntax:
//
//	vendor <name> {
//		kind         stripe|twilio|resend|declared
//		upstream     <url>
//		unknown_cost deny|reserve <usd>
//
//		# stripe
//		secret_key   <secret>
//		rate         <currency> <usd_per_unit>
//
//		# twilio
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
//
//		# resend
//		secret_key   <secret>
//		per_email    <usd>
//
//		# declared (any other name)
//		secret_key   <secret>
//		credential   bearer|basic_password|basic_user|header <Name>
//		inject       bearer|basic [<username>]|header <Name>
//		errors       json|stripe|twilio|resend
//		free_methods <METHOD>...|none
//		endpoint <METHOD> <path> [{
//			estimate <term>
//			settle   <term>
//			settle   txn_id <path>
//		}]
//		idempotency <header> {
//			window       <duration>
//			methods      <METHOD>...
//			scope_header <Name>...
//		}
//	}
//
// where a <term> is one of
//
//	flat  <usd>
//	field <path> price <usd> [default <n>] [times <path>]
//	count <path> price <usd> [times <path>]
//	chars <path> price <usd> [per <n>] [times <path>]
//
// kind defaults to the name for stripe, twilio and resend, else declared.
// Secrets, upstream and inject's username take placeholders such as
// {env.TWILIO_AUTH_TOKEN}, expanded when the config is loaded. rate,
// message_rate and voice_rate may be given once per currency or prefix,
// endpoint once per match; every other option once. A declared vendor
// gets free replays only with an idempotency block (window required,
// methods default POST).
func (vc *VendorConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	name := d.Val()
	if err := validVendorName(name); err != nil {
		return d.Err(err.Error())
	}
	type use struct {
		opt  string
		file string
		line int
	}
	var used []use
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] && !repeatable[opt] {
			return d.Errf("vendor %s: option '%s' is given twice", name, opt)
		}
		seen[opt] = true
		used = append(used, use{opt, d.File(), d.Line()})
		var err error
		switch opt {
		case "kind":
			err = vc.parseKind(d, name)
		case "upstream":
			vc.Upstream, err = oneArg(d)
		case "secret_key":
			vc.SecretKey, err = oneArg(d)
		case "unknown_cost":
			err = vc.parseUnknownCost(d)
		case "rate":
			err = vc.parseRate(d)
		case "account_sid":
			vc.AccountSID, err = oneArg(d)
		case "auth_token":
			vc.AuthToken, err = oneArg(d)
		case "api_key":
			vc.APIKey, err = oneArg(d)
		case "call_max":
			vc.CallMaxUSD, err = usdArg(d, true)
		case "message_rate":
			err = vc.parseMessageRate(d)
		case "default_message_rate":
			var r twilio.Rate
			if r, err = parseRateArgs(d, opt, d.RemainingArgs(), false); err == nil {
				vc.DefaultMessageRate = &r
			}
		case "voice_rate":
			err = vc.parseVoiceRate(d)
		case "default_voice_rate":
			vc.DefaultVoiceRate, err = usdArg(d, true)
		case "twiml_url":
			var u string
			if u, err = oneArg(d); err == nil {
				vc.TwiMLURLs = append(vc.TwiMLURLs, u)
			}
		case "idempotency":
			vc.Idempotency, err = parseIdempotency(d)
		case "reconcile":
			vc.Reconcile, err = parseReconcile(d)
		case "per_email":
			vc.PerEmailUSD, err = usdArg(d, true)
		case "credential":
			err = vc.parseCredential(d)
		case "inject":
			err = vc.parseInject(d)
		case "errors":
			vc.ErrorFormat, err = oneArg(d)
			if err == nil {
				switch vc.ErrorFormat {
				case vendors.FormatJSON, vendors.FormatStripe, vendors.FormatTwilio, vendors.FormatResend:
				default:
					err = d.Errf("errors must be json, stripe, twilio or resend, not '%s'", vc.ErrorFormat)
				}
			}
		case "free_methods":
			err = vc.parseFreeMethods(d)
		case "endpoint":
			err = vc.parseEndpoint(d)
		default:
			return d.Errf("unrecognized vendor option '%s'", opt)
		}
		if err != nil {
			return err
		}
	}

	// Options of another kind are refused, wherever kind was given.
	kind := vc.kind(name)
	allowed := kindOptions[kind]
	for _, u := range used {
		switch u.opt {
		case "kind", "upstream", "unknown_cost":
			continue
		}
		if !contains(allowed, u.opt) {
			hint := ""
			if vc.Kind == "" && kind == kindDeclared {
				for _, k := range []string{kindStripe, kindTwilio, kindResend} {
					if contains(kindOptions[k], u.opt) {
						hint = fmt.Sprintf("; for a %s vendor, name it %s or add 'kind %s'", k, k, k)
						break
					}
				}
			}
			return fmt.Errorf("vendor %s: '%s' is not an option of a %s vendor (it takes %s%s), at %s:%d",
				name, u.opt, kind, strings.Join(allowed, ", "), hint, u.file, u.line)
		}
	}
	// Everything that can be checked before the secrets are known is
	// checked now, with placeholders standing for unset secrets.
	if _, err := vc.build(name, caddy.NewEmptyReplacer()); err != nil {
		return d.Errf("vendor %s: %v", name, err)
	}
	return nil
}

// oneArg reads the option's single argument.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// usdArg reads one amount of dollars (up to six decimals).
func usdArg(d *caddyfile.Dispenser, positive bool) (money.Micros, error) {
	opt := d.Val()
	s, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	amt, err := money.ParseUSD(s)
	if err != nil || (positive && amt <= 0) {
		return 0, d.Errf("%s: invalid amount '%s' (want dollars, e.g. 0.0083)", opt, s)
	}
	return amt, nil
}

func (vc *VendorConfig) parseKind(d *caddyfile.Dispenser, name string) error {
	k, err := oneArg(d)
	if err != nil {
		return err
	}
	switch k {
	case kindStripe, kindTwilio, kindResend, kindDeclared:
	default:
		return d.Errf("unknown vendor kind '%s' (want stripe, twilio, resend or declared)", k)
	}
	if err := checkBuiltinName(name, k); err != nil {
		return d.Err(err.Error())
	}
	vc.Kind = k
	return nil
}

func (vc *VendorConfig) parseUnknownCost(d *caddyfile.Dispenser) error {
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
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func (vc *VendorConfig) parseRate(d *caddyfile.Dispenser) error {
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
	return nil
}

// parseMessageRate reads message_rate <+prefix> [sms <usd>] [mms <usd>] |
// unknown.
func (vc *VendorConfig) parseMessageRate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Errf("message_rate needs a prefix and prices, e.g. 'message_rate +44 sms 0.0524 mms 0.10' or 'message_rate +1787 unknown'")
	}
	prefix := args[0]
	if !validE164Prefix(prefix) {
		return d.Errf("message_rate: prefix '%s' must be + and 1 to 15 digits", prefix)
	}
	if _, dup := vc.MessageRates[prefix]; dup {
		return d.Errf("message_rate %s is given twice", prefix)
	}
	r, err := parseRateArgs(d, "message_rate", args[1:], true)
	if err != nil {
		return err
	}
	if vc.MessageRates == nil {
		vc.MessageRates = twilio.RateTable{}
	}
	vc.MessageRates[prefix] = r
	return nil
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

// parseReconcile reads reconcile off | { … }.
func parseReconcile(d *caddyfile.Dispenser) (*ReconcileConfig, error) {
	rc := &ReconcileConfig{}
	if d.NextArg() {
		if d.Val() != "off" {
			return nil, d.Errf("reconcile takes 'off' or a block, not '%s'", d.Val())
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		rc.Off = true
		if d.NextBlock(d.Nesting()) {
			return nil, d.Errf("reconcile off takes no block")
		}
		return rc, nil
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if seen[opt] {
			return nil, d.Errf("reconcile: option '%s' is given twice", opt)
		}
		seen[opt] = true
		switch opt {
		case "min_age", "interval", "give_up_after":
			dur, err := parseDuration(d)
			if err != nil {
				return nil, err
			}
			switch opt {
			case "min_age":
				rc.MinAge = dur
			case "interval":
				rc.Interval = dur
			default:
				rc.GiveUpAfter = dur
			}
		case "batch":
			s, err := oneArg(d)
			if err != nil {
				return nil, err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 10000 {
				return nil, d.Errf("reconcile: batch '%s' must be a number from 1 to 10000", s)
			}
			rc.Batch = n
		default:
			return nil, d.Errf("unrecognized reconcile option '%s'", opt)
		}
	}
	return rc, nil
}

// parseCredential reads credential bearer|basic_password|basic_user|header <Name>.
func (vc *VendorConfig) parseCredential(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	c := &vendors.CredentialConfig{From: args[0]}
	switch args[0] {
	case vendors.FromBearer, vendors.FromBasicPassword, vendors.FromBasicUser:
		if len(args) != 1 {
			return d.Errf("credential %s takes no more arguments", args[0])
		}
	case vendors.FromHeader:
		if len(args) != 2 {
			return d.Errf("credential header needs a header name, e.g. 'credential header X-Api-Key'")
		}
		c.Header = args[1]
	default:
		return d.Errf("credential must be bearer, basic_password, basic_user or header <Name>, not '%s'", args[0])
	}
	if err := c.Validate(); err != nil {
		return d.Err(err.Error())
	}
	vc.Credential = c
	return nil
}

// parseInject reads inject bearer|basic [<username>]|header <Name>.
func (vc *VendorConfig) parseInject(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	in := &vendors.InjectConfig{As: args[0]}
	switch args[0] {
	case vendors.InjectBearer:
		if len(args) != 1 {
			return d.Errf("inject bearer takes no more arguments")
		}
	case vendors.InjectBasic:
		if len(args) > 2 {
			return d.Errf("inject basic takes at most a username")
		}
		if len(args) == 2 {
			in.Username = args[1]
		}
	case vendors.InjectHeader:
		if len(args) != 2 {
			return d.Errf("inject header needs a header name, e.g. 'inject header X-Api-Key'")
		}
		in.Header = args[1]
	default:
		return d.Errf("inject must be bearer, basic [<username>] or header <Name>, not '%s'", args[0])
	}
	check := *in
	check.Secret = "x"
	if err := check.Validate(); err != nil {
		return d.Err(err.Error())
	}
	vc.Inject = in
	return nil
}

// parseFreeMethods reads free_methods <METHOD>... | none.
func (vc *VendorConfig) parseFreeMethods(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("free_methods needs methods (e.g. 'free_methods GET HEAD') or 'none'")
	}
	methods := []string{}
	if len(args) == 1 && args[0] == "none" {
		vc.FreeMethods = &methods
		return nil
	}
	for _, m := range args {
		if err := vendors.ValidateEndpoint(m + " /x"); err != nil {
			return d.Errf("free_methods: unknown method '%s'", m)
		}
		if contains(methods, m) {
			return d.Errf("free_methods: %s is given twice", m)
		}
		methods = append(methods, m)
	}
	vc.FreeMethods = &methods
	return nil
}

// parseEndpoint reads endpoint <METHOD> <path> [{ estimate …; settle … }].
func (vc *VendorConfig) parseEndpoint(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("endpoint needs a method and a path, e.g. 'endpoint POST /v1/chat/completions'")
	}
	ep := declared.Endpoint{Match: args[0] + " " + args[1]}
	if err := vendors.ValidateEndpoint(ep.Match); err != nil {
		return d.Errf("endpoint %s: %v", ep.Match, err)
	}
	for _, e := range vc.Endpoints {
		if e.Match == ep.Match {
			return d.Errf("endpoint %s is declared twice", ep.Match)
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "estimate":
			t, err := parseTerm(d, "estimate", d.RemainingArgs())
			if err != nil {
				return err
			}
			ep.Estimate = append(ep.Estimate, t)
		case "settle":
			args := d.RemainingArgs()
			if len(args) > 0 && args[0] == "txn_id" {
				if len(args) != 2 {
					return d.Errf("settle txn_id needs one path, e.g. 'settle txn_id id'")
				}
				if ep.Settle.TxnIDPath != "" {
					return d.Errf("settle txn_id is given twice")
				}
				ep.Settle.TxnIDPath = args[1]
				continue
			}
			t, err := parseTerm(d, "settle", args)
			if err != nil {
				return err
			}
			ep.Settle.Terms = append(ep.Settle.Terms, t)
		default:
			return d.Errf("unrecognized endpoint option '%s' (want estimate or settle)", d.Val())
		}
	}
	vc.Endpoints = append(vc.Endpoints, ep)
	return nil
}

// parseTerm reads a cost term:
//
//	flat  <usd>
//	field <path> price <usd> [default <n>] [times <path>]
//	count <path> price <usd> [times <path>]
//	chars <path> price <usd> [per <n>] [times <path>]
func parseTerm(d *caddyfile.Dispenser, opt string, args []string) (declared.Term, error) {
	var t declared.Term
	if len(args) == 0 {
		return t, d.Errf("%s needs a term: flat, field, count or chars", opt)
	}
	kind := args[0]
	if kind == "flat" {
		if len(args) != 2 {
			return t, d.Errf("%s flat needs one amount, e.g. '%s flat 0.01'", opt, opt)
		}
		if _, err := declared.ParsePrice(args[1]); err != nil {
			return t, d.Errf("%s flat: invalid amount '%s'", opt, args[1])
		}
		t.FlatUSD = declared.Decimal(args[1])
		return t, nil
	}
	if kind != "field" && kind != "count" && kind != "chars" {
		return t, d.Errf("%s: unknown term '%s' (want flat, field, count or chars)", opt, kind)
	}
	if len(args) < 2 {
		return t, d.Errf("%s %s needs a path", opt, kind)
	}
	switch kind {
	case "field":
		t.Field = args[1]
	case "count":
		t.Count = args[1]
	default:
		t.Chars = args[1]
	}
	rest := args[2:]
	seen := map[string]bool{}
	for i := 0; i < len(rest); i += 2 {
		mod := rest[i]
		if i+1 >= len(rest) {
			return t, d.Errf("%s %s: '%s' needs a value", opt, kind, mod)
		}
		val := rest[i+1]
		if seen[mod] {
			return t, d.Errf("%s %s: '%s' is given twice", opt, kind, mod)
		}
		seen[mod] = true
		switch {
		case mod == "price":
			if _, err := declared.ParsePrice(val); err != nil {
				return t, d.Errf("%s %s: invalid price '%s' (want dollars with up to nine decimals)", opt, kind, val)
			}
			t.PriceUSD = declared.Decimal(val)
		case mod == "default" && kind == "field":
			if _, err := declared.ParsePrice(val); err != nil {
				return t, d.Errf("%s field: invalid default '%s' (want a plain non-negative number)", opt, val)
			}
			t.Default = declared.Decimal(val)
		case mod == "per" && kind == "chars":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 1000 {
				return t, d.Errf("%s chars: per '%s' must be a number from 1 to 1000", opt, val)
			}
			t.CharsPerUnit = n
		case mod == "times":
			t.Times = val
		default:
			return t, d.Errf("%s %s: unknown modifier '%s'", opt, kind, mod)
		}
	}
	if t.PriceUSD == "" {
		return t, d.Errf("%s %s %s: price is required, e.g. 'price 0.000001'", opt, kind, args[1])
	}
	return t, nil
}
