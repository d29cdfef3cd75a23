package declaredmodule

import (
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/declared"
)

// CaddyfileOptions implements vendormodule.Module.
func (m *Module) CaddyfileOptions() []vendormodule.Option {
	return []vendormodule.Option{
		vendormodule.StringOption("secret_key", &m.SecretKey),
		{Name: "credential", Parse: m.parseCredential},
		{Name: "inject", Parse: m.parseInject},
		{Name: "errors", Parse: m.parseErrors},
		{Name: "free_methods", Parse: m.parseFreeMethods},
		{Name: "endpoint", Repeatable: true, Parse: m.parseEndpoint},
		{Name: "idempotency", Parse: func(d *caddyfile.Dispenser) (err error) {
			m.Idempotency, err = parseIdempotency(d)
			return err
		}},
	}
}

// UnmarshalCaddyfile reads a vendor block of kind declared: the kind of
// any vendor whose name is not a kind.
//
// Syntax:
//
//	vendor <name> {
//		kind         declared
//		upstream     <url>
//		unknown_cost deny|reserve <usd>
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
//			paths        <pattern>...
//			scope_header <Name>...
//		}
//	}
//
// where a <term> is one of
//
//	flat  <usd>
//	field <path> price <usd> [default <n>] [times <path>] [bound]
//	count <path> price <usd> [times <path>]
//	chars <path> price <usd> [per <n>] [times <path>]
//
// bound marks the estimate field the vendor takes as the most a call may
// use (an LLM's max_tokens): Keybrake writes it into the forwarded body,
// the default when absent, lowered to what the reservation covers. An
// endpoint with settle terms needs one. endpoint may be given once per
// match. inject's username takes
// placeholders like the secret. A declared vendor gets free replays only
// with an idempotency block (window required, methods default POST).
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return vendormodule.UnmarshalBlock(d, m)
}

// parseErrors reads errors json|stripe|twilio|resend.
func (m *Module) parseErrors(d *caddyfile.Dispenser) error {
	f, err := vendormodule.OneArg(d)
	if err != nil {
		return err
	}
	if !vendors.ValidFormat(f) {
		return d.Errf("errors must be json, stripe, twilio or resend, not '%s'", f)
	}
	m.ErrorFormat = f
	return nil
}

// parseCredential reads credential bearer|basic_password|basic_user|header <Name>.
func (m *Module) parseCredential(d *caddyfile.Dispenser) error {
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
	m.Credential = c
	return nil
}

// parseInject reads inject bearer|basic [<username>]|header <Name>.
func (m *Module) parseInject(d *caddyfile.Dispenser) error {
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
	if err := in.Validate(); err != nil {
		return d.Err(err.Error())
	}
	m.Inject = in
	return nil
}

// parseFreeMethods reads free_methods <METHOD>... | none.
func (m *Module) parseFreeMethods(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.Errf("free_methods needs methods (e.g. 'free_methods GET HEAD') or 'none'")
	}
	methods := []string{}
	if len(args) == 1 && args[0] == "none" {
		m.FreeMethods = &methods
		return nil
	}
	for _, method := range args {
		if err := allowlist.CheckMethod(method); err != nil {
			return d.Errf("free_methods: unknown method '%s'", method)
		}
		if slices.Contains(methods, method) {
			return d.Errf("free_methods: %s is given twice", method)
		}
		methods = append(methods, method)
	}
	m.FreeMethods = &methods
	return nil
}

// parseEndpoint reads endpoint <METHOD> <path> [{ estimate …; settle … }].
func (m *Module) parseEndpoint(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("endpoint needs a method and a path, e.g. 'endpoint POST /v1/chat/completions'")
	}
	ep := declared.Endpoint{Match: args[0] + " " + args[1]}
	if _, err := allowlist.ParsePattern(ep.Match); err != nil {
		return d.Errf("endpoint %s: %v", ep.Match, err)
	}
	for _, e := range m.Endpoints {
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
	m.Endpoints = append(m.Endpoints, ep)
	return nil
}

// parseTerm reads a cost term:
//
//	flat  <usd>
//	field <path> price <usd> [default <n>] [times <path>] [bound]
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
		if mod == "bound" { // checked with the whole declaration
			if t.Bound {
				return t, d.Errf("%s %s: 'bound' is given twice", opt, kind)
			}
			t.Bound = true
			i-- // a flag: no value follows
			continue
		}
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
	header, err := vendormodule.OneArg(d)
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
			s, err := vendormodule.OneArg(d)
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
