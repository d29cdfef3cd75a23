// Package twilio speaks Twilio's REST API (api.twilio.com/2010-04-01) for
// the Keybrake gate.
//
// # Credentials
//
// Twilio's SDKs send HTTP Basic "AccountSid:AuthToken" (or an API key SID
// and secret) and put the account SID in the path
// /2010-04-01/Accounts/{AccountSid}/…. Through Keybrake:
//
//   - the Basic password carries the vault key (vault keys are
//     alphanumeric, which twilio-go requires of a credential);
//   - the Basic username is ignored: use any alphanumeric value, best your
//     account SID or a placeholder such as "ACkeybrake". twilio-go also puts
//     it in the path as the account SID; Keybrake rewrites that path
//     segment, whatever it holds, to the real account SID;
//   - upstream, Keybrake sends Basic AccountSID:AuthToken (or
//     APIKey:AuthToken when an API key is configured) and the real account
//     SID in the path. A path without an account segment
//     (/2010-04-01/Accounts.json, anything outside /2010-04-01/Accounts/…) is
//     refused.
//
// So this works with no other change than pointing twilio-go's HTTP client
// at Keybrake:
//
//	twilio.NewRestClientWithParams(twilio.ClientParams{
//		Username: "ACkeybrake", Password: vaultKey})
//
// # Cost
//
//   - POST …/Messages.json: an SMS costs its segments (see Segments) × the
//     SMS rate of the destination's longest E.164 prefix in the rate table;
//     an MMS (any MediaUrl, or SendAsMms=true) costs the prefix's MMS rate
//     per message. The defaults are Twilio's US/Canada prices (DefaultSMS,
//     DefaultMMS, as of DefaultRatesDate); other countries are configured
//     per prefix. A destination with no rate (another country, a non-US
//     NANP area code, a whatsapp: address, a Content template whose length
//     Keybrake cannot see) is of unknown cost unless a DefaultRate is set.
//   - POST …/Calls.json and …/Conferences/{sid}/Participants.json (which
//     dials out) reserve CallMaxUSD, a configured maximum per call (default
//     $1.00).
//   - POST …/IncomingPhoneNumbers.json (buying a number) is of unknown cost.
//   - Everything else (GET, DELETE, updates) costs nothing.
//
// # Settlement
//
// A 2xx message or call create records its sid (SM…, MM…, CA…) as the
// transaction id. Its price is usually null at creation: the estimate is
// kept as a provisional cost (cost_state "unpriced") and a Reconciler
// fetches the real price later. A price already present (Twilio sends a
// negative decimal string, "-0.00830", in price_unit "USD") settles at its
// absolute value exactly. A 4xx releases; anything else is ambiguous.
//
// # Errors
//
// {"code":20429,"message":"…","more_info":"https://www.twilio.com/docs/errors/20429","status":429},
// Content-Type application/json, which twilio-go decodes into a
// *client.TwilioRestError (it does not retry).
package twilio

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/declared"
)

// Name is the vendor name of Twilio.
const Name = "twilio"

// DefaultCallMaxUSD is the default reservation for a call: $1.00.
const DefaultCallMaxUSD money.Micros = 1_000_000

// APIVersion is the path prefix of Twilio's REST API.
const APIVersion = "2010-04-01"

// Config configures the Twilio vendor.
type Config struct {
	// AccountSID is the real account SID (AC…). Required; alphanumeric.
	AccountSID string `json:"account_sid"`
	// AuthToken is the real auth token (or, with APIKey, the API key's
	// secret). Required.
	AuthToken string `json:"auth_token"`
	// APIKey, when set, is an API key SID (SK…) sent as the Basic user
	// instead of AccountSID. Default empty.
	APIKey string `json:"api_key,omitempty"`
	// Rates overrides or extends the default rate table per E.164 prefix
	// (see DefaultRates). Default none.
	Rates RateTable `json:"rates,omitempty"`
	// DefaultRate prices destinations with no rate in the table. Default
	// nil: such messages are of unknown cost (the unknown_cost policy
	// applies).
	DefaultRate *Rate `json:"default_rate,omitempty"`
	// CallMaxUSD is what a call reserves until Twilio prices it. Default
	// DefaultCallMaxUSD ($1.00).
	CallMaxUSD money.Micros `json:"call_max_usd,omitempty"`
}

// Vendor is Twilio.
type Vendor struct {
	accountSID  string
	rates       RateTable
	defaultRate *Rate
	callMax     money.Micros
	from        declared.CredentialConfig
	inject      declared.InjectConfig
}

// New returns the Twilio vendor.
func New(cfg Config) (*Vendor, error) {
	if cfg.AccountSID == "" || !alnum(cfg.AccountSID) {
		return nil, fmt.Errorf("twilio: account_sid is required and must be alphanumeric (AC…)")
	}
	if cfg.AuthToken == "" {
		return nil, fmt.Errorf("twilio: auth_token is required")
	}
	if cfg.APIKey != "" && !alnum(cfg.APIKey) {
		return nil, fmt.Errorf("twilio: api_key must be alphanumeric (SK…)")
	}
	if cfg.CallMaxUSD < 0 {
		return nil, fmt.Errorf("twilio: call_max_usd must not be negative")
	}
	rates := DefaultRates()
	for p, r := range cfg.Rates {
		if err := validPrefix(p); err != nil {
			return nil, fmt.Errorf("twilio: %v", err)
		}
		if r.SMS < 0 || r.MMS < 0 {
			return nil, fmt.Errorf("twilio: rate %s: prices must not be negative", p)
		}
		rates[p] = r
	}
	if d := cfg.DefaultRate; d != nil && (d.SMS < 0 || d.MMS < 0 || d.Unknown) {
		return nil, fmt.Errorf("twilio: default_rate must have non-negative prices and cannot be unknown")
	}
	callMax := cfg.CallMaxUSD
	if callMax == 0 {
		callMax = DefaultCallMaxUSD
	}
	user := cfg.AccountSID
	if cfg.APIKey != "" {
		user = cfg.APIKey
	}
	v := &Vendor{
		accountSID:  cfg.AccountSID,
		rates:       rates,
		defaultRate: cfg.DefaultRate,
		callMax:     callMax,
		from:        declared.CredentialConfig{From: declared.FromBasicPassword},
		inject:      declared.InjectConfig{As: declared.InjectBasic, Username: user, Secret: cfg.AuthToken},
	}
	if err := v.inject.Validate(); err != nil {
		return nil, fmt.Errorf("twilio: %v", err)
	}
	return v, nil
}

// Name implements vendors.Vendor.
func (v *Vendor) Name() string { return Name }

// Credential implements vendors.Vendor: the vault key is the Basic
// password; the username is ignored.
func (v *Vendor) Credential(r *http.Request) (string, bool) { return v.from.Extract(r) }

// Authorize implements vendors.Vendor: the real account SID replaces the
// path's, the real credentials replace the vault key.
func (v *Vendor) Authorize(r *http.Request) error {
	if err := v.rewritePath(r); err != nil {
		return err
	}
	return declared.SwapCredential(r, v.from, v.inject)
}

// WriteError implements vendors.Vendor.
func (v *Vendor) WriteError(w http.ResponseWriter, e *vendors.Error) { declared.WriteTwilioError(w, e) }

// errNoAccount refuses a path outside /2010-04-01/Accounts/{sid}/….
func errNoAccount() *vendors.Error {
	return &vendors.Error{Status: http.StatusNotFound, Code: "keybrake_bad_path",
		Message: "Keybrake forwards only /" + APIVersion + "/Accounts/{AccountSid}/… paths to Twilio."}
}

// accountPath splits /2010-04-01/Accounts/{sid}/rest… into its rest. ok is
// false when the path has no account segment.
func accountPath(p string) (rest []string, ok bool) {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) < 3 || segs[0] != APIVersion || segs[1] != "Accounts" ||
		segs[2] == "" || segs[2] == ".json" {
		return nil, false
	}
	return segs[3:], true
}

// replaceAccount replaces the account segment of a path that has one,
// keeping a ".json" suffix (/2010-04-01/Accounts/AC….json).
func replaceAccount(p, sid string) (string, bool) {
	lead := strings.HasPrefix(p, "/")
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) < 3 || segs[0] != APIVersion || segs[1] != "Accounts" || segs[2] == "" {
		return "", false
	}
	if strings.HasSuffix(segs[2], ".json") && len(segs) == 3 {
		segs[2] = sid + ".json"
	} else {
		segs[2] = sid
	}
	out := strings.Join(segs, "/")
	if lead {
		out = "/" + out
	}
	return out, true
}

func (v *Vendor) rewritePath(r *http.Request) error {
	if _, ok := accountPath(r.URL.Path); !ok {
		return errNoAccount()
	}
	p, ok := replaceAccount(r.URL.Path, v.accountSID)
	if !ok {
		return errNoAccount()
	}
	r.URL.Path = p
	if r.URL.RawPath != "" {
		raw, ok := replaceAccount(r.URL.RawPath, v.accountSID)
		if !ok {
			return errNoAccount()
		}
		r.URL.RawPath = raw
	}
	if r.RequestURI != "" {
		r.RequestURI = r.URL.RequestURI()
	}
	return nil
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Interface guard.
var _ vendors.Vendor = (*Vendor)(nil)
