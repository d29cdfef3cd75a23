package caddymodule

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/stripe"
)

// VendorConfig declares one vendor inside the keybrake app.
type VendorConfig struct {
	// Kind is stripe, twilio, resend or declared. Default: the vendor's
	// name when that is a built-in vendor, else declared.
	Kind string `json:"kind,omitempty"`

	// SecretKey is the real API secret (Stripe, Resend). Placeholders are
	// expanded at provision time, so {env.STRIPE_SECRET_KEY} keeps the secret
	// out of the JSON config. Default: none; the vendor's calls are then
	// refused with 503 until it is set.
	SecretKey string `json:"secret_key,omitempty"`

	// UnknownCost is deny or reserve: what to do with an allowed call whose
	// cost cannot be told from the request. Default: deny.
	UnknownCost string `json:"unknown_cost,omitempty"`

	// UnknownCostUSD is the amount reserved for such a call when
	// UnknownCost is reserve. Required then.
	UnknownCostUSD money.Micros `json:"unknown_cost_usd,omitempty"`

	// Rates converts a foreign currency to US dollars: currency code to
	// dollars per whole unit, as a decimal string ("jpy": "0.0067"). USD
	// needs none. Default: none, so non-USD amounts are refused.
	Rates map[string]string `json:"rates,omitempty"`
}

func (vc *VendorConfig) kind(name string) string {
	if vc.Kind != "" {
		return vc.Kind
	}
	switch name {
	case stripe.Name:
		return name
	}
	return "declared"
}

// build provisions the vendor.
func (vc *VendorConfig) build(name string, repl *caddy.Replacer) (*vendorRuntime, error) {
	if vc == nil {
		vc = &VendorConfig{}
	}
	rt := &vendorRuntime{}
	switch vc.UnknownCost {
	case "", "deny":
	case "reserve":
		if vc.UnknownCostUSD <= 0 {
			return nil, fmt.Errorf("unknown_cost reserve needs a positive amount")
		}
		rt.unknownCost = gate.UnknownCostPolicy{Reserve: true, Amount: vc.UnknownCostUSD}
	default:
		return nil, fmt.Errorf("unknown_cost must be deny or reserve, not %q", vc.UnknownCost)
	}
	rates := money.Rates{}
	for cur, r := range vc.Rates {
		v, err := money.ParseRate(r)
		if err != nil {
			return nil, fmt.Errorf("rate %s: %w", cur, err)
		}
		rates[strings.ToLower(cur)] = v
	}
	secret := repl.ReplaceAll(vc.SecretKey, "")
	var err error
	switch k := vc.kind(name); k {
	case stripe.Name:
		if secret == "" {
			// A placeholder secret keeps the gate buildable; calls are
			// refused before it could be used (see vendorRuntime.missing).
			secret, rt.missing = "unset", "secret_key"
		}
		rt.vendor, err = stripe.New(stripe.Config{SecretKey: secret, Rates: rates})
	default:
		return nil, fmt.Errorf("unknown vendor kind %q", k)
	}
	if err != nil {
		return nil, err
	}
	return rt, nil
}

var _ vendors.Vendor = (*stripe.Vendor)(nil)
