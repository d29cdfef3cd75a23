package vendormodule

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/money"
)

// Option is one option of a vendor block in the Caddyfile.
type Option struct {
	// Name is the option's name, its first token on the line.
	Name string
	// Repeatable options may be given more than once (once per currency,
	// prefix or match); every other option once.
	Repeatable bool
	// Parse reads the option into the module; the dispenser is on Name.
	Parse func(d *caddyfile.Dispenser) error
}

// KindOf is the kind of a vendor module: the last label of its module ID.
func KindOf(m caddy.Module) string {
	return strings.TrimPrefix(string(m.CaddyModule().ID), Namespace+".")
}

// UnmarshalBlock reads a vendor block into m: kind, upstream and
// unknown_cost into its Base, every other option with its
// CaddyfileOptions. The dispenser is on the block's segment, `vendor
// <name> { … }`; the caller chose m by the block's kind. An option given
// twice is refused (unless it is Repeatable), as is an option no kind
// takes; an option of another kind is refused once the block is read,
// naming the kind that takes it.
//
// The options every kind takes:
//
//	kind         <kind>
//	upstream     <url>
//	unknown_cost deny|reserve <usd>
func UnmarshalBlock(d *caddyfile.Dispenser, m Module) error {
	d.Next() // "vendor"
	if !d.NextArg() {
		return d.ArgErr()
	}
	name := d.Val()
	kind := KindOf(m)
	opts := m.CaddyfileOptions()
	type use struct {
		opt, file string
		line      int
	}
	var (
		foreign   []use
		seen      = map[string]bool{}
		kindGiven bool
	)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		o, ok := optionNamed(opts, opt)
		if seen[opt] && !(ok && o.Repeatable) {
			return d.Errf("vendor %s: option '%s' is given twice", name, opt)
		}
		seen[opt] = true
		var err error
		switch {
		case opt == "kind":
			kindGiven = true
			_, err = OneArg(d)
		case opt == "upstream":
			m.VendorBase().Upstream, err = OneArg(d)
		case opt == "unknown_cost":
			err = m.VendorBase().unmarshalUnknownCost(d)
		case ok:
			err = o.Parse(d)
		case len(kindsTaking(opt)) > 0:
			// Reported once the block is read: its kind line may follow.
			foreign = append(foreign, use{opt, d.File(), d.Line()})
			skipOption(d)
		default:
			return d.Errf("unrecognized vendor option '%s'", opt)
		}
		if err != nil {
			return err
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	u := foreign[0]
	hint := ""
	if _, err := caddy.GetModule(Namespace + "." + name); !kindGiven && err != nil {
		if k := kindsTaking(u.opt)[0]; k != kind {
			hint = fmt.Sprintf("; for a %s vendor, name it %s or add 'kind %s'", k, k, k)
		}
	}
	names := make([]string, len(opts))
	for i, o := range opts {
		names[i] = o.Name
	}
	return fmt.Errorf("vendor %s: '%s' is not an option of a %s vendor (it takes %s%s), at %s:%d",
		name, u.opt, kind, strings.Join(names, ", "), hint, u.file, u.line)
}

func optionNamed(opts []Option, name string) (Option, bool) {
	for _, o := range opts {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// kindsTaking lists the registered kinds with a Caddyfile option named
// opt, in the order of their module IDs.
func kindsTaking(opt string) []string {
	var kinds []string
	for _, info := range caddy.GetModules(Namespace) {
		if m, ok := info.New().(Module); ok {
			if _, ok := optionNamed(m.CaddyfileOptions(), opt); ok {
				kinds = append(kinds, KindOf(m))
			}
		}
	}
	return kinds
}

// skipOption passes over the rest of an option: its arguments and block.
func skipOption(d *caddyfile.Dispenser) {
	d.RemainingArgs()
	for nesting := d.Nesting(); d.NextBlock(nesting); {
	}
}

// unmarshalUnknownCost reads unknown_cost deny|reserve <usd>.
func (b *Base) unmarshalUnknownCost(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 0:
		return d.ArgErr()
	case args[0] == "deny" && len(args) == 1:
		b.UnknownCost = "deny"
	case args[0] == "reserve" && len(args) == 1:
		return d.Errf("unknown_cost reserve needs an amount in USD")
	case args[0] == "reserve" && len(args) == 2:
		amt, err := money.ParseUSD(args[1])
		if err != nil || amt <= 0 {
			return d.Errf("unknown_cost reserve: invalid amount '%s'", args[1])
		}
		b.UnknownCost, b.UnknownCostUSD = "reserve", amt
	case args[0] == "deny" || args[0] == "reserve":
		return d.ArgErr()
	default:
		return d.Errf("unknown_cost must be deny or reserve, not '%s'", args[0])
	}
	return nil
}

// OneArg reads the option's single argument.
func OneArg(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}

// USDArg reads the option's single argument, an amount of dollars with up
// to six decimals; positive refuses zero.
func USDArg(d *caddyfile.Dispenser, positive bool) (money.Micros, error) {
	opt := d.Val()
	s, err := OneArg(d)
	if err != nil {
		return 0, err
	}
	amt, err := money.ParseUSD(s)
	if err != nil || (positive && amt <= 0) {
		return 0, d.Errf("%s: invalid amount '%s' (want dollars, e.g. 0.0083)", opt, s)
	}
	return amt, nil
}

// DurationArg reads the option's single argument, a positive duration.
func DurationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	s, err := OneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return 0, d.Errf("invalid duration '%s': %v", s, err)
	}
	if dur <= 0 {
		return 0, d.Errf("duration must be positive: '%s'", s)
	}
	return caddy.Duration(dur), nil
}

// StringOption is an option of one argument, read into dst.
func StringOption(name string, dst *string) Option {
	return Option{Name: name, Parse: func(d *caddyfile.Dispenser) (err error) {
		*dst, err = OneArg(d)
		return err
	}}
}

// USDOption is an option of one positive amount of dollars, read into
// dst.
func USDOption(name string, dst *money.Micros) Option {
	return Option{Name: name, Parse: func(d *caddyfile.Dispenser) (err error) {
		*dst, err = USDArg(d, true)
		return err
	}}
}
