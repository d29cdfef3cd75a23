// Package declaredmodule is the vendor kind declared: the Caddy module
// keybrake.vendors.declared, a paid HTTP API described entirely in
// configuration (package declared).
package declaredmodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/declared"
)

// Kind is the kind of a declared vendor, and of any vendor whose name is
// not a kind.
const Kind = "declared"

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures a declared vendor. Its Upstream is informational.
type Module struct {
	vendormodule.Base

	// SecretKey is the real API secret, usually a placeholder such as
	// {env.OPENAI_API_KEY}. Default: none; the vendor's calls are then
	// refused with 503 until it is set.
	SecretKey string `json:"secret_key,omitempty"`

	// Credential says where the client sends its credential, which is
	// where it sends the vault key. Default {"from":"bearer"}.
	Credential *vendors.CredentialConfig `json:"credential,omitempty"`

	// Inject says how the real secret goes upstream. Its secret is
	// SecretKey: inject's own secret field must stay empty; its username
	// is expanded like a secret. Default {"as":"bearer"}.
	Inject *vendors.InjectConfig `json:"inject,omitempty"`

	// ErrorFormat is the shape of Keybrake's own refusals: json, stripe,
	// twilio or resend. Default json.
	ErrorFormat string `json:"error_format,omitempty"`

	// FreeMethods lists the HTTP methods that cost nothing when no
	// endpoint matches the request. Default (absent) GET and HEAD; an
	// empty list makes every unmatched request of unknown cost.
	FreeMethods *[]string `json:"free_methods,omitempty"`

	// Endpoints are the cost rules, tried in order. Default: none.
	Endpoints []declared.Endpoint `json:"endpoints,omitempty"`

	// Idempotency declares that the vendor honours an idempotency header,
	// which alone makes a true replay free. Default: none, every replay is
	// priced.
	Idempotency *declared.IdempotencyConfig `json:"idempotency,omitempty"`

	secret, username string
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  vendormodule.Namespace + "." + Kind,
		New: func() caddy.Module { return new(Module) },
	}
}

// Provision expands the secret and inject's username.
func (m *Module) Provision(ctx caddy.Context) error {
	if err := m.Base.Provision(ctx); err != nil {
		return err
	}
	m.secret = m.Secret("secret_key", m.SecretKey)
	if m.Inject != nil {
		m.username = m.Expand(m.Inject.Username)
	}
	return nil
}

// Validate keeps the secret out of inject, where it would not be
// expanded.
func (m *Module) Validate() error {
	if m.Inject != nil && m.Inject.Secret != "" {
		return fmt.Errorf("inject: put the secret in secret_key, not in inject")
	}
	return nil
}

// Vendor implements vendormodule.Module: the declaration, checked whole.
func (m *Module) Vendor(name string) (vendors.Vendor, error) {
	cfg := declared.Config{
		Name:        name,
		Upstream:    m.ExpandedUpstream(),
		ErrorFormat: m.ErrorFormat,
		Endpoints:   m.Endpoints,
		Idempotency: m.Idempotency,
	}
	if m.Credential != nil {
		cfg.Credential = *m.Credential
	}
	if m.Inject != nil {
		cfg.Inject = *m.Inject
		cfg.Inject.Username = m.username
	}
	cfg.Inject.Secret = m.secret
	if m.FreeMethods != nil {
		cfg.FreeMethods = append([]string{}, *m.FreeMethods...)
	}
	return declared.New(cfg)
}

// Interface guards.
var (
	_ vendormodule.Module = (*Module)(nil)
	_ caddy.Validator     = (*Module)(nil)
)
