// Package stripe speaks Stripe's API for the Keybrake gate.
//
// Credentials: stripe-go and stripe-node send "Authorization: Bearer KEY";
// curl users often send HTTP Basic with the key as the user. Both carry the
// vault key. The real secret goes upstream as Bearer.
//
// Cost (docs/vendors.md has the whole table): Stripe amounts are integers in
// the currency's minor unit (cents for usd, yen for jpy). A create is priced
// at its amount. A call on a PaymentIntent or Charge that already exists
// (update of amount or currency, confirm, capture, increment) is priced from
// the object as Stripe has it, looked up with the real secret before
// forwarding, less what the same vault key has already counted for that
// object: so a currency switch, a capture above the authorisation or a
// confirm of an intent created elsewhere is counted, and an intent the key
// created and paid for costs nothing more to confirm. Reads are free, and so
// are the POSTs and DELETEs Stripe documents as moving no money; every other
// call is of unknown cost. Foreign currencies need a configured rate.
//
// Idempotency: Stripe honours Idempotency-Key on POST, per account
// (Stripe-Account), for 24 hours, and refuses the same key with other
// parameters; the gate makes a true replay free and refuses the rest the
// same way.
package stripe

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Name is the vendor name of Stripe.
const Name = "stripe"

// DefaultUpstream is Stripe's API.
const DefaultUpstream = "https://api.stripe.com"

// Config configures the Stripe vendor.
type Config struct {
	// SecretKey is the real Stripe secret key (sk_… or rk_…). Empty, the
	// vendor is built but not configured: Authorize refuses every call
	// with 503.
	SecretKey string
	// Rates converts non-USD amounts to US dollars. Default: none, so a
	// non-USD amount is refused with a 400.
	Rates money.Rates
	// Upstream is where objects are looked up before a call on them is
	// priced; it should be the reverse_proxy's upstream. Default
	// DefaultUpstream.
	Upstream string
	// Client makes the lookups. Default: an http.Client with no redirects
	// followed.
	Client *http.Client
}

// Vendor is Stripe.
type Vendor struct {
	secretKey string
	rates     money.Rates
	upstream  string
	client    *http.Client
}

// New returns the Stripe vendor.
func New(cfg Config) (*Vendor, error) {
	upstream := cfg.Upstream
	if upstream == "" {
		upstream = DefaultUpstream
	}
	if u, err := url.Parse(upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("stripe: upstream %q: want an absolute http or https URL", upstream)
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Timeout: lookupTimeout,
			// A redirect would carry the secret elsewhere; Stripe sends none.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Vendor{secretKey: cfg.SecretKey, rates: cfg.Rates, upstream: trimBase(upstream), client: client}, nil
}

// Idempotency implements vendors.IdempotencyHonouring: Stripe keeps a key
// for 24 hours per account, on POST only ("Don't send idempotency keys in
// GET and DELETE requests, because it has no effect"), and answers the same
// key with other parameters with a 400 idempotency_error, and a key whose
// first request is still running with a 409 that the SDKs retry.
func (v *Vendor) Idempotency() vendors.Idempotency {
	return vendors.Idempotency{
		Header:       "Idempotency-Key",
		Methods:      []string{http.MethodPost},
		Window:       24 * time.Hour,
		ScopeHeaders: scopeHeaders,
		Mismatch: vendors.Error{Status: http.StatusBadRequest, Type: "idempotency_error", Code: "idempotency_key_reused",
			Message: "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
				"Keybrake refused this request before it reached Stripe; use a new Idempotency-Key for a different request."},
		InFlight: vendors.Error{Status: http.StatusConflict, Type: "idempotency_error", Code: "idempotency_key_in_use",
			Message:   "There is currently another in-progress request using this Idempotency-Key. Try again later.",
			Retryable: true},
	}
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
	if v.secretKey == "" {
		return vendors.NotConfigured("Keybrake has no Stripe secret key to send upstream.")
	}
	r.Header.Set("Authorization", "Bearer "+v.secretKey)
	return nil
}

// Interface guards.
var (
	_ vendors.Vendor               = (*Vendor)(nil)
	_ vendors.IdempotencyHonouring = (*Vendor)(nil)
)
