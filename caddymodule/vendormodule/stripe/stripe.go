// Package stripemodule is the vendor kind stripe: the Caddy module
// keybrake.vendors.stripe, which configures package stripe.
package stripemodule

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/stripe"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures a Stripe vendor. Its Upstream is where an object is
// looked up before a call on it is priced. Default
// https://api.stripe.com.
type Module struct {
	vendormodule.Base

	// SecretKey is the real Stripe secret key (sk_… or rk_…), usually a
	// placeholder such as {env.STRIPE_SECRET_KEY}, expanded when the
	// config is loaded. Default: none; the vendor's calls are then refused
	// with 503 until it is set.
	SecretKey string `json:"secret_key,omitempty"`

	// Rates converts a foreign currency to US dollars: currency code to
	// dollars per whole unit, as a decimal string ("jpy": "0.0067"). USD
	// needs none. Default: none, so non-USD amounts are refused.
	Rates map[string]string `json:"rates,omitempty"`

	secret string
	rates  money.Rates
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  vendormodule.Namespace + "." + stripe.Name,
		New: func() caddy.Module { return new(Module) },
	}
}

// Provision expands the secret and parses the rates.
func (m *Module) Provision(ctx caddy.Context) error {
	if err := m.Base.Provision(ctx); err != nil {
		return err
	}
	m.secret = m.Secret("secret_key", m.SecretKey)
	m.rates = money.Rates{}
	for cur, r := range m.Rates {
		v, err := money.ParseRate(r)
		if err != nil {
			return fmt.Errorf("rate %s: %w", cur, err)
		}
		m.rates[strings.ToLower(cur)] = v
	}
	return nil
}

// Vendor implements vendormodule.Module.
func (m *Module) Vendor(string) (vendors.Vendor, error) {
	return stripe.New(stripe.Config{SecretKey: m.secret, Rates: m.rates, Upstream: m.ExpandedUpstream()})
}

// CaddyfileOptions implements vendormodule.Module.
func (m *Module) CaddyfileOptions() []vendormodule.Option {
	return []vendormodule.Option{
		vendormodule.StringOption("secret_key", &m.SecretKey),
		{Name: "rate", Repeatable: true, Parse: m.unmarshalRate},
	}
}

// UnmarshalCaddyfile reads a vendor block of kind stripe.
//
// Syntax:
//
//	vendor <name> {
//		kind         stripe
//		upstream     <url>
//		unknown_cost deny|reserve <usd>
//		secret_key   <secret>
//		rate         <currency> <usd_per_unit>
//	}
//
// rate may be given once per currency.
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return vendormodule.UnmarshalBlock(d, m)
}

// unmarshalRate reads rate <currency> <usd_per_unit>.
func (m *Module) unmarshalRate(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Errf("rate needs a currency and dollars per unit, e.g. 'rate jpy 0.0067'")
	}
	if _, err := money.ParseRate(args[1]); err != nil {
		return d.Errf("rate %s: invalid rate '%s'", args[0], args[1])
	}
	if m.Rates == nil {
		m.Rates = map[string]string{}
	}
	m.Rates[args[0]] = args[1]
	return nil
}

// Interface guards.
var (
	_ vendormodule.Module   = (*Module)(nil)
	_ caddy.Provisioner     = (*Module)(nil)
	_ caddyfile.Unmarshaler = (*Module)(nil)
)
