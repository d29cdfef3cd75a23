package caddymodule

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/declared"
	"github.com/keybrake/keybrake/vendors/resend"
	"github.com/keybrake/keybrake/vendors/stripe"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// Vendor kinds.
const (
	kindStripe   = stripe.Name
	kindTwilio   = twilio.Name
	kindResend   = resend.Name
	kindDeclared = "declared"
)

// VendorConfig declares one vendor inside the keybrake app. Which fields
// apply depends on the kind: a field of another kind is refused.
//
// Secrets (secret_key, account_sid, auth_token, api_key) and upstream are
// expanded at provision time, so {env.STRIPE_SECRET_KEY} keeps the secret
// out of the JSON config. A vendor whose required secret expands to
// nothing is still provisioned, but its calls are refused with 503 until
// the secret is set: one unset vendor does not stop Caddy or the others.
type VendorConfig struct {
	// Kind is stripe, twilio, resend or declared. Default: the vendor's
	// name when that is a built-in vendor (stripe, twilio, resend), else
	// declared. A built-in kind under another name (a second Twilio
	// account, "twilio_eu") works as the built-in one, with keys issued
	// for that name.
	Kind string `json:"kind,omitempty"`

	// Upstream is the vendor's API base URL. For twilio it is where the
	// reconciler fetches prices (default https://api.twilio.com); for
	// stripe it is where an object is looked up before a call on it is
	// priced (default https://api.stripe.com); for the other kinds it is
	// informational. The route's reverse_proxy is what
	// sends the gated calls. Placeholders are expanded. Default: none.
	Upstream string `json:"upstream,omitempty"`

	// SecretKey is the real API secret (stripe, resend, declared).
	// Default: none; the vendor's calls are then refused with 503.
	SecretKey string `json:"secret_key,omitempty"`

	// UnknownCost is deny or reserve: what to do with an allowed call whose
	// cost cannot be told from the request. Any kind. Default: deny.
	UnknownCost string `json:"unknown_cost,omitempty"`

	// UnknownCostUSD is the amount reserved for such a call when
	// UnknownCost is reserve. Required then.
	UnknownCostUSD money.Micros `json:"unknown_cost_usd,omitempty"`

	// Rates converts a foreign currency to US dollars (stripe): currency
	// code to dollars per whole unit, as a decimal string ("jpy":
	// "0.0067"). USD needs none. Default: none, so non-USD amounts are
	// refused.
	Rates map[string]string `json:"rates,omitempty"`

	// AccountSID is Twilio's real account SID (AC…), sent upstream in the
	// path and as the Basic user (twilio). Default: none; calls are then
	// refused with 503.
	AccountSID string `json:"account_sid,omitempty"`

	// AuthToken is Twilio's real auth token, or the API key's secret when
	// APIKey is set (twilio). Default: none; calls are then refused with
	// 503.
	AuthToken string `json:"auth_token,omitempty"`

	// APIKey is a Twilio API key SID (SK…) sent as the Basic user instead
	// of the account SID (twilio). Default: none (an expansion to nothing
	// also means none).
	APIKey string `json:"api_key,omitempty"`

	// CallMaxUSD, when set, is the most one Twilio call (Calls, a
	// conference participant) may cost: its TimeLimit is lowered to the
	// minutes it buys (twilio). Default: none, calls are bounded by
	// TimeLimit and the key's headroom.
	CallMaxUSD money.Micros `json:"call_max_usd,omitempty"`

	// VoiceRates sets the per-minute price of calls by E.164 prefix over
	// Twilio's US default; the longest prefix wins; unknown carves a prefix
	// out (twilio). Default: none beyond the built-in table.
	VoiceRates twilio.VoiceRateTable `json:"voice_rates,omitempty"`

	// DefaultVoiceRate prices a minute of a call to a destination with no
	// voice rate in the table (twilio). Default: none, so such calls are of
	// unknown cost.
	DefaultVoiceRate money.Micros `json:"default_voice_rate,omitempty"`

	// TwiMLURLs are the URL prefixes whose TwiML documents the operator
	// vouches for (twilio): a call's Url, FallbackUrl or a participant's
	// WaitUrl must lie under one, since that TwiML could dial, record or
	// speak at charges Keybrake cannot see. Default: none, so only calls
	// with inline Twiml Keybrake can read pass.
	TwiMLURLs []string `json:"twiml_urls,omitempty"`

	// MessageRates sets the price of messages by E.164 prefix ("+44"),
	// over Twilio's US/Canada defaults; the longest prefix of a destination
	// wins (twilio). An entry replaces the prefix's default whole: a zero
	// sms or mms price, or unknown, makes that kind of message there of
	// unknown cost. Default: none beyond the built-in table.
	MessageRates twilio.RateTable `json:"message_rates,omitempty"`

	// DefaultMessageRate prices messages to destinations with no rate in
	// the table (twilio). Default: none, so they are of unknown cost.
	DefaultMessageRate *twilio.Rate `json:"default_message_rate,omitempty"`

	// Reconcile configures the background job that replaces the
	// provisional cost of Twilio messages and calls with their real price
	// (twilio). Default: on, with the defaults of ReconcileConfig.
	Reconcile *ReconcileConfig `json:"reconcile,omitempty"`

	// PerEmailUSD is Resend's price of one email to one recipient
	// (resend). Default $0.0009.
	PerEmailUSD money.Micros `json:"per_email_usd,omitempty"`

	// Credential says where the client sends its credential, which is
	// where it sends the vault key (declared). Default {"from":"bearer"}.
	Credential *vendors.CredentialConfig `json:"credential,omitempty"`

	// Inject says how the real secret goes upstream (declared). Its secret
	// is SecretKey: inject's own secret field must stay empty; its username
	// is expanded like a secret. Default {"as":"bearer"}.
	Inject *vendors.InjectConfig `json:"inject,omitempty"`

	// ErrorFormat is the shape of Keybrake's own refusals: json, stripe,
	// twilio or resend (declared). Default json.
	ErrorFormat string `json:"error_format,omitempty"`

	// FreeMethods lists the HTTP methods that cost nothing when no endpoint
	// matches the request (declared). Default (absent) GET and HEAD; an
	// empty list makes every unmatched request of unknown cost.
	FreeMethods *[]string `json:"free_methods,omitempty"`

	// Endpoints are the cost rules of a declared vendor, tried in order
	// (declared). Default: none.
	Endpoints []declared.Endpoint `json:"endpoints,omitempty"`

	// Idempotency declares that a declared vendor honours an idempotency
	// header, which alone makes a true replay free (declared). Default:
	// none, every replay is priced.
	Idempotency *declared.IdempotencyConfig `json:"idempotency,omitempty"`
}

// vendorNameRE is what a vendor name may be: it is used in keys, routes
// and logs.
var vendorNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func validVendorName(name string) error {
	if !vendorNameRE.MatchString(name) {
		return fmt.Errorf("vendor name %q: want lower-case letters, digits, _ or -, starting with a letter, at most 32 characters", name)
	}
	return nil
}

// checkBuiltinName refuses a built-in vendor's name for another kind:
// "stripe" is always Stripe.
func checkBuiltinName(name, kind string) error {
	switch name {
	case kindStripe, kindTwilio, kindResend:
		if kind != name {
			return fmt.Errorf("vendor %s is built in: its kind can only be %s, not %s", name, name, kind)
		}
	}
	return nil
}

func kindOf(kind, name string) string {
	if kind != "" {
		return kind
	}
	switch name {
	case kindStripe, kindTwilio, kindResend:
		return name
	}
	return kindDeclared
}

func (vc *VendorConfig) kind(name string) string { return kindOf(vc.Kind, name) }

// fieldsSet lists the kind-specific JSON fields that are set.
func (vc *VendorConfig) fieldsSet() []string {
	var set []string
	add := func(ok bool, name string) {
		if ok {
			set = append(set, name)
		}
	}
	add(vc.SecretKey != "", "secret_key")
	add(len(vc.Rates) > 0, "rates")
	add(vc.AccountSID != "", "account_sid")
	add(vc.AuthToken != "", "auth_token")
	add(vc.APIKey != "", "api_key")
	add(vc.CallMaxUSD != 0, "call_max_usd")
	add(len(vc.MessageRates) > 0, "message_rates")
	add(len(vc.VoiceRates) > 0, "voice_rates")
	add(vc.DefaultVoiceRate != 0, "default_voice_rate")
	add(len(vc.TwiMLURLs) > 0, "twiml_urls")
	add(vc.DefaultMessageRate != nil, "default_message_rate")
	add(vc.Reconcile != nil, "reconcile")
	add(vc.PerEmailUSD != 0, "per_email_usd")
	add(vc.Credential != nil, "credential")
	add(vc.Inject != nil, "inject")
	add(vc.ErrorFormat != "", "error_format")
	add(vc.FreeMethods != nil, "free_methods")
	add(len(vc.Endpoints) > 0, "endpoints")
	add(vc.Idempotency != nil, "idempotency")
	return set
}

// kindFields lists, per kind, the kind-specific JSON fields it takes.
var kindFields = map[string][]string{
	kindStripe:   {"secret_key", "rates"},
	kindTwilio:   {"account_sid", "auth_token", "api_key", "call_max_usd", "message_rates", "default_message_rate", "voice_rates", "default_voice_rate", "twiml_urls", "reconcile"},
	kindResend:   {"secret_key", "per_email_usd"},
	kindDeclared: {"secret_key", "credential", "inject", "error_format", "free_methods", "endpoints", "idempotency"},
}

// checkFields refuses fields that another kind takes.
func (vc *VendorConfig) checkFields(kind string) error {
	allowed, ok := kindFields[kind]
	if !ok {
		return fmt.Errorf("unknown vendor kind %q (want stripe, twilio, resend or declared)", kind)
	}
	var wrong []string
	for _, f := range vc.fieldsSet() {
		if !contains(allowed, f) {
			wrong = append(wrong, f)
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%s not used by a %s vendor (it takes %s)", strings.Join(wrong, ", "), kind, strings.Join(allowed, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// build provisions the vendor.
func (vc *VendorConfig) build(name string, repl *caddy.Replacer) (*vendorRuntime, error) {
	if vc == nil {
		vc = &VendorConfig{}
	}
	if err := validVendorName(name); err != nil {
		return nil, err
	}
	kind := vc.kind(name)
	if err := checkBuiltinName(name, kind); err != nil {
		return nil, err
	}
	if err := vc.checkFields(kind); err != nil {
		return nil, err
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
	upstream := strings.TrimSpace(repl.ReplaceAll(vc.Upstream, ""))
	if upstream != "" {
		u, err := url.Parse(upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("upstream %q: want an absolute http or https URL", upstream)
		}
	}
	secret := repl.ReplaceAll(vc.SecretKey, "")
	var (
		v   vendors.Vendor
		err error
	)
	switch kind {
	case kindStripe:
		v, err = vc.buildStripe(secret, upstream, rt)
	case kindTwilio:
		v, err = vc.buildTwilio(name, upstream, repl, rt)
	case kindResend:
		if secret == "" {
			// A placeholder secret keeps the gate buildable; calls are
			// refused before it could be used (see vendorRuntime.missing).
			secret, rt.missing = "unset", "secret_key"
			rt.noteEnv(vc.SecretKey)
		}
		v, err = resend.New(resend.Config{APIKey: secret, PerEmailUSD: vc.PerEmailUSD})
	case kindDeclared:
		v, err = vc.buildDeclared(name, upstream, secret, repl, rt)
	}
	if err != nil {
		return nil, err
	}
	if v.Name() != name {
		v = renamed{Vendor: v, name: name}
	}
	rt.vendor = v
	return rt, nil
}

func (vc *VendorConfig) buildStripe(secret, upstream string, rt *vendorRuntime) (vendors.Vendor, error) {
	rates := money.Rates{}
	for cur, r := range vc.Rates {
		v, err := money.ParseRate(r)
		if err != nil {
			return nil, fmt.Errorf("rate %s: %w", cur, err)
		}
		rates[strings.ToLower(cur)] = v
	}
	if secret == "" {
		secret, rt.missing = "unset", "secret_key"
		rt.noteEnv(vc.SecretKey)
	}
	return stripe.New(stripe.Config{SecretKey: secret, Rates: rates, Upstream: upstream})
}

func (vc *VendorConfig) buildTwilio(name, upstream string, repl *caddy.Replacer, rt *vendorRuntime) (vendors.Vendor, error) {
	sid := strings.TrimSpace(repl.ReplaceAll(vc.AccountSID, ""))
	token := repl.ReplaceAll(vc.AuthToken, "")
	apiKey := strings.TrimSpace(repl.ReplaceAll(vc.APIKey, ""))
	var missing []string
	if sid == "" {
		sid, missing = "ACunset", append(missing, "account_sid")
		rt.noteEnv(vc.AccountSID)
	}
	if token == "" {
		token, missing = "unset", append(missing, "auth_token")
		rt.noteEnv(vc.AuthToken)
	}
	rt.missing = strings.Join(missing, " and ")
	v, err := twilio.New(twilio.Config{
		AccountSID:  sid,
		AuthToken:   token,
		APIKey:      apiKey,
		Rates:       vc.MessageRates,
		DefaultRate: vc.DefaultMessageRate,
		CallMaxUSD:  vc.CallMaxUSD,
		VoiceRates:  vc.VoiceRates,

		DefaultVoiceRate: vc.DefaultVoiceRate,
		TwiMLURLs:        vc.TwiMLURLs,
	})
	if err != nil {
		return nil, err
	}
	rc, err := vc.Reconcile.reconciler(name, upstream)
	if err != nil {
		return nil, err
	}
	if rc != nil && rt.missing == "" {
		rc.AccountSID, rc.AuthToken, rc.APIKey = sid, token, apiKey
		rt.reconciler = rc
	}
	return v, nil
}

func (vc *VendorConfig) buildDeclared(name, upstream, secret string, repl *caddy.Replacer, rt *vendorRuntime) (vendors.Vendor, error) {
	if secret == "" {
		secret, rt.missing = "unset", "secret_key"
		rt.noteEnv(vc.SecretKey)
	}
	cfg := declared.Config{
		Name:        name,
		Upstream:    upstream,
		ErrorFormat: vc.ErrorFormat,
		Endpoints:   vc.Endpoints,
		Idempotency: vc.Idempotency,
	}
	if vc.Credential != nil {
		cfg.Credential = *vc.Credential
	}
	if vc.Inject != nil {
		if vc.Inject.Secret != "" {
			return nil, fmt.Errorf("inject: put the secret in secret_key, not in inject")
		}
		cfg.Inject = *vc.Inject
		cfg.Inject.Username = repl.ReplaceAll(cfg.Inject.Username, "")
	}
	cfg.Inject.Secret = secret
	if vc.FreeMethods != nil {
		cfg.FreeMethods = append([]string{}, *vc.FreeMethods...)
	}
	return declared.New(cfg)
}

// renamed is a built-in vendor declared under another name (a second
// Twilio account): keys, the ledger and logs know it by that name. It
// keeps the vendor's optional behaviours: its idempotency (the zero value,
// which honours nothing, when it has none) and its recorded path.
type renamed struct {
	vendors.Vendor
	name string
}

func (r renamed) Name() string { return r.name }

// Idempotency implements vendors.IdempotencyHonouring.
func (r renamed) Idempotency() vendors.Idempotency {
	if h, ok := r.Vendor.(vendors.IdempotencyHonouring); ok {
		return h.Idempotency()
	}
	return vendors.Idempotency{}
}

// RecordedPath implements vendors.PathRecorder.
func (r renamed) RecordedPath(path string) string {
	if pr, ok := r.Vendor.(vendors.PathRecorder); ok {
		return pr.RecordedPath(path)
	}
	return path
}

var (
	_ vendors.Vendor               = renamed{}
	_ vendors.IdempotencyHonouring = renamed{}
	_ vendors.PathRecorder         = renamed{}
)

// noteEnv remembers the environment variable of an {env.NAME} setting.
func (rt *vendorRuntime) noteEnv(raw string) {
	for _, m := range envPlaceholder.FindAllStringSubmatch(raw, -1) {
		rt.missingEnv = append(rt.missingEnv, m[1])
	}
}

// envPlaceholder matches Caddy's {env.NAME} placeholder.
var envPlaceholder = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)

// notConfigured is the message of the 503 a vendor without its secrets
// answers: it names the environment variables to set when there are any.
func (rt *vendorRuntime) notConfigured(name string) string {
	if len(rt.missingEnv) == 0 {
		return "Keybrake is not configured for " + name + " (missing: " + rt.missing + "); set it in the keybrake global option."
	}
	return "Keybrake is not configured for " + name + ": set the environment variable " +
		strings.Join(rt.missingEnv, " and ") + " and restart Keybrake (" + rt.missing + " in the keybrake global option)."
}
