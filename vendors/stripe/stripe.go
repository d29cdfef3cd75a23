// Package stripe speaks Stripe's API for the Keybrake gate.
//
// Credentials: stripe-go and stripe-node send "Authorization: Bearer KEY";
// curl users often send HTTP Basic with the key as the user. Both carry the
// vault key. The real secret goes upstream as Bearer.
//
// Cost: Stripe amounts are integers in the currency's minor unit (cents for
// usd, yen for jpy). A PaymentIntent is counted once, at creation, for its
// amount: a later confirm or capture of a PaymentIntent Keybrake has counted
// costs nothing more; a confirm or capture of one it has not seen follows
// the unknown_cost policy. Foreign currencies need a configured rate.
package stripe

import (
	"fmt"
	"net/http"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Name is the vendor name of Stripe.
const Name = "stripe"

// Config configures the Stripe vendor.
type Config struct {
	// SecretKey is the real Stripe secret key (sk_… or rk_…). Required.
	SecretKey string
	// Rates converts non-USD amounts to US dollars. Default: none, so a
	// non-USD amount is refused with a 400.
	Rates money.Rates
}

// Vendor is Stripe.
type Vendor struct {
	secretKey string
	rates     money.Rates
}

// New returns the Stripe vendor.
func New(cfg Config) (*Vendor, error) {
	if cfg.SecretKey == "" {
		return nil, fmt.Errorf("stripe: secret_key is required")
	}
	return &Vendor{secretKey: cfg.SecretKey, rates: cfg.Rates}, nil
}

// Name implements vendors.Vendor.
func (v *Vendor) Name() string { return Name }

// Credential implements vendors.Vendor: Bearer, or Basic with the key as user.
func (v *Vendor) Credential(r *http.Request) (string, bool) {
	if tok, ok := vendors.BearerToken(r); ok {
		return tok, vendors.IsVaultKeyShaped(tok)
	}
	if user, _, ok := vendors.BasicCredentials(r); ok {
		return user, vendors.IsVaultKeyShaped(user)
	}
	return "", false
}

// Authorize implements vendors.Vendor.
func (v *Vendor) Authorize(r *http.Request) error {
	r.Header.Set("Authorization", "Bearer "+v.secretKey)
	return nil
}

// Interface guard.
var _ vendors.Vendor = (*Vendor)(nil)
