// Package resendmodule is the vendor kind resend: the Caddy module
// keybrake.vendors.resend, which configures package resend.
package resendmodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/resend"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures a Resend vendor. Its Upstream is informational.
type Module struct {
	vendormodule.Base

	// SecretKey is the real Resend API key (re_…), usually
	// {env.RESEND_API_KEY}. Default: none; the vendor's calls are then
	// refused with 503 until it is set.
	SecretKey string `json:"secret_key,omitempty"`

	// PerEmailUSD is Resend's price of one email to one recipient.
	// Default $0.0009 (resend.DefaultPerEmailUSD).
	PerEmailUSD money.Micros `json:"per_email_usd,omitempty"`

	secret string
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  vendormodule.Namespace + "." + resend.Name,
		New: func() caddy.Module { return new(Module) },
	}
}

// Provision expands the secret.
func (m *Module) Provision(ctx caddy.Context) error {
	if err := m.Base.Provision(ctx); err != nil {
		return err
	}
	m.secret = m.Secret("secret_key", m.SecretKey)
	return nil
}

// Validate checks the price.
func (m *Module) Validate() error {
	if m.PerEmailUSD < 0 {
		return fmt.Errorf("per_email_usd must not be negative")
	}
	return nil
}

// Vendor implements vendormodule.Module.
func (m *Module) Vendor(string) (vendors.Vendor, error) {
	return resend.New(resend.Config{APIKey: m.secret, PerEmailUSD: m.PerEmailUSD})
}

// CaddyfileOptions implements vendormodule.Module.
func (m *Module) CaddyfileOptions() []vendormodule.Option {
	return []vendormodule.Option{
		vendormodule.StringOption("secret_key", &m.SecretKey),
		vendormodule.USDOption("per_email", &m.PerEmailUSD),
	}
}

// UnmarshalCaddyfile reads a vendor block of kind resend.
//
// Syntax:
//
//	vendor <name> {
//		kind         resend
//		upstream     <url>
//		unknown_cost deny|reserve <usd>
//		secret_key   <secret>
//		per_email    <usd>
//	}
func (m *Module) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return vendormodule.UnmarshalBlock(d, m)
}

// Interface guards.
var (
	_ vendormodule.Module = (*Module)(nil)
	_ caddy.Validator     = (*Module)(nil)
)
