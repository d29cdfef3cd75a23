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
//     SID in the path. A path without an account segment (anything outside
//     /2010-04-01/Accounts/…) is refused. The path is logged and audited as
//     it goes upstream (RecordedPath), so a vault key sent as the username
//     never reaches the audit trail.
//
// So this works with no other change than pointing twilio-go's HTTP client
// at Keybrake:
//
//	twilio.NewRestClientWithParams(twilio.ClientParams{
//		Username: "ACkeybrake", Password: vaultKey})
//
// # Cost
//
// Every POST is priced, free for a reason Twilio documents, or refused (see
// docs/vendors.md for the table); Messages.json, Messages.xml and Messages
// are the same resource, and so are all Twilio resources with or without
// an extension.
//
//   - POST …/Messages: an SMS costs its segments (see Segments) × the SMS
//     rate of the destination's longest E.164 prefix in the rate table; an
//     MMS (any MediaUrl, at most 10, or SendAsMms=true) costs the prefix's
//     MMS rate per message, or what it costs as SMS segments if Twilio
//     converts it, whichever is more. A parameter given twice is refused;
//     a ContentSid template or a destination with no rate is of unknown
//     cost.
//   - POST …/Calls and …/Conferences/{sid}/Participants: TimeLimit (Twilio's
//     default 14400 s when absent) in started minutes × the destination's
//     per-minute voice rate. When the key's headroom is smaller, the gate
//     reserves less (at least one minute) and Estimate.Fit writes a
//     TimeLimit the reservation covers. Recording, answering machine
//     detection and transcription add charges Keybrake cannot bound, and
//     so does TwiML that dials, redirects, gathers or records: a call runs
//     only inline TwiML Keybrake reads and finds free, or a Url under a
//     twiml_url prefix the operator vouches for (twiml.go); anything else
//     is of unknown cost.
//   - Free POSTs: redacting or cancelling a message (Messages/{sid} with
//     Body="" or Status=canceled) and hanging up a call (Calls/{sid} with
//     Status=completed or canceled). Every other POST is of unknown cost.
//   - GET, HEAD and DELETE move no money.
//   - Credential endpoints (Keys, SigningKeys, SIP credential lists and IP
//     access lists, the Accounts list and the Account resource, whose
//     answers carry auth tokens) are refused whatever the allowlist.
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
	"net/url"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Name is the vendor name of Twilio.
const Name = "twilio"

// APIVersion is the path prefix of Twilio's REST API.
const APIVersion = "2010-04-01"

// Config configures the Twilio vendor.
type Config struct {
	// AccountSID is the real account SID (AC…), alphanumeric. Empty (as
	// AuthToken), the vendor is built but not configured: Authorize
	// refuses every call with 503.
	AccountSID string `json:"account_sid"`
	// AuthToken is the real auth token (or, with APIKey, the API key's
	// secret).
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
	// VoiceRates overrides or extends the default per-minute voice rate
	// table per E.164 prefix (see DefaultVoiceRates). Default none.
	VoiceRates VoiceRateTable `json:"voice_rates,omitempty"`
	// DefaultVoiceRate prices a minute of a call to a destination with no
	// voice rate in the table (another country, a client: or sip:
	// address). Default 0: such calls are of unknown cost.
	DefaultVoiceRate money.Micros `json:"default_voice_rate,omitempty"`
	// CallMaxUSD, when set, is the most one call may cost: its TimeLimit is
	// lowered to the minutes it buys. Default 0: no bound but the key's
	// headroom and TimeLimit.
	CallMaxUSD money.Micros `json:"call_max_usd,omitempty"`
	// TwiMLURLs are the URL prefixes whose TwiML documents the operator
	// vouches for: a call's Url, FallbackUrl or a participant's WaitUrl
	// must lie under one, since the TwiML there could dial, record or
	// speak at charges Keybrake cannot see. Default none: only inline
	// Twiml Keybrake can read (see twiml.go) is allowed.
	TwiMLURLs []string `json:"twiml_urls,omitempty"`
}

// Vendor is Twilio.
type Vendor struct {
	accountSID   string
	rates        RateTable
	defaultRate  *Rate
	voiceRates   VoiceRateTable
	defaultVoice money.Micros
	callMax      money.Micros
	twimlURLs    []*url.URL
	from         vendors.CredentialConfig
	inject       vendors.InjectConfig
}

// New returns the Twilio vendor.
func New(cfg Config) (*Vendor, error) {
	if !alnum(cfg.AccountSID) {
		return nil, fmt.Errorf("twilio: account_sid must be alphanumeric (AC…)")
	}
	if cfg.APIKey != "" && !alnum(cfg.APIKey) {
		return nil, fmt.Errorf("twilio: api_key must be alphanumeric (SK…)")
	}
	if cfg.CallMaxUSD < 0 || cfg.DefaultVoiceRate < 0 {
		return nil, fmt.Errorf("twilio: call_max_usd and default_voice_rate must not be negative")
	}
	voice := DefaultVoiceRates()
	for p, r := range cfg.VoiceRates {
		if err := validPrefix(p); err != nil {
			return nil, fmt.Errorf("twilio: voice %v", err)
		}
		if r.PerMinute < 0 || (r.PerMinute == 0) != r.Unknown {
			return nil, fmt.Errorf("twilio: voice rate %s: want a positive price per minute, or unknown", p)
		}
		voice[p] = r
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
	twimlURLs, err := parseTwiMLPrefixes(cfg.TwiMLURLs)
	if err != nil {
		return nil, fmt.Errorf("twilio: %w", err)
	}
	user := cfg.AccountSID
	if cfg.APIKey != "" {
		user = cfg.APIKey
	}
	v := &Vendor{
		accountSID:   cfg.AccountSID,
		rates:        rates,
		defaultRate:  cfg.DefaultRate,
		voiceRates:   voice,
		defaultVoice: cfg.DefaultVoiceRate,
		callMax:      cfg.CallMaxUSD,
		twimlURLs:    twimlURLs,
		from:         vendors.CredentialConfig{From: vendors.FromBasicPassword},
		inject:       vendors.InjectConfig{As: vendors.InjectBasic, Username: user, Secret: cfg.AuthToken},
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
	if v.accountSID == "" {
		return vendors.NotConfigured("Keybrake has no Twilio account SID to send upstream.")
	}
	if err := v.rewritePath(r); err != nil {
		return err
	}
	if err := trimTo(r); err != nil {
		return err
	}
	return vendors.SwapCredential(r, v.from, v.inject)
}

// WriteError implements vendors.Vendor.
func (v *Vendor) WriteError(w http.ResponseWriter, e *vendors.Error) { vendors.WriteTwilioError(w, e) }

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Interface guards. Twilio ignores Idempotency-Key, so Vendor does not
// implement vendors.IdempotencyHonouring: a replay is priced like any call.
var (
	_ vendors.Vendor       = (*Vendor)(nil)
	_ vendors.PathRecorder = (*Vendor)(nil)
)
