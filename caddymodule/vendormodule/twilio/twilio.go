// Package twiliomodule is the vendor kind twilio: the Caddy module
// keybrake.vendors.twilio, which configures package twilio and runs its
// price reconciler.
package twiliomodule

import (
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/twilio"
)

func init() {
	caddy.RegisterModule(Module{})
}

// Module configures a Twilio vendor. Its Upstream is where the reconciler
// fetches prices. Default https://api.twilio.com.
type Module struct {
	vendormodule.Base

	// AccountSID is Twilio's real account SID (AC…), sent upstream in the
	// path and as the Basic user; usually {env.TWILIO_ACCOUNT_SID}.
	// Default: none; the vendor's calls are then refused with 503.
	AccountSID string `json:"account_sid,omitempty"`

	// AuthToken is Twilio's real auth token, or the API key's secret when
	// APIKey is set. Default: none; calls are then refused with 503.
	AuthToken string `json:"auth_token,omitempty"`

	// APIKey is a Twilio API key SID (SK…) sent as the Basic user instead
	// of the account SID. Default: none (an expansion to nothing also
	// means none).
	APIKey string `json:"api_key,omitempty"`

	// CallMaxUSD, when set, is the most one call (Calls, a conference
	// participant) may cost: its TimeLimit is lowered to the minutes it
	// buys. Default: none, calls are bounded by TimeLimit and the key's
	// headroom.
	CallMaxUSD money.Micros `json:"call_max_usd,omitempty"`

	// VoiceRates sets the per-minute price of calls by E.164 prefix over
	// Twilio's US default; the longest prefix wins; unknown carves a prefix
	// out. Default: none beyond the built-in table.
	VoiceRates twilio.VoiceRateTable `json:"voice_rates,omitempty"`

	// DefaultVoiceRate prices a minute of a call to a destination with no
	// voice rate in the table. Default: none, so such calls are of
	// unknown cost.
	DefaultVoiceRate money.Micros `json:"default_voice_rate,omitempty"`

	// TwiMLURLs are the URL prefixes whose TwiML documents the operator
	// vouches for: a call's Url, FallbackUrl or a participant's WaitUrl
	// must lie under one, since that TwiML could dial, record or speak at
	// charges Keybrake cannot see. Default: none, so only calls with
	// inline Twiml Keybrake can read pass.
	TwiMLURLs []string `json:"twiml_urls,omitempty"`

	// MessageRates sets the price of messages by E.164 prefix ("+44"),
	// over Twilio's US/Canada defaults; the longest prefix of a
	// destination wins. An entry replaces the prefix's default whole: a
	// zero sms or mms price, or unknown, makes that kind of message there
	// of unknown cost. Default: none beyond the built-in table.
	MessageRates twilio.RateTable `json:"message_rates,omitempty"`

	// DefaultMessageRate prices messages to destinations with no rate in
	// the table. Default: none, so they are of unknown cost.
	DefaultMessageRate *twilio.Rate `json:"default_message_rate,omitempty"`

	// Reconcile configures the background job that replaces the
	// provisional cost of messages and calls with their real price.
	// Default: on, with the defaults of ReconcileConfig.
	Reconcile *ReconcileConfig `json:"reconcile,omitempty"`

	sid, token, apiKey string
	reconciler         *twilio.Reconciler
}

// ReconcileConfig configures the job that replaces the provisional cost of
// a Twilio vendor's messages and calls (cost_state "unpriced", Twilio's
// price being null when they are created) with the real price, fetched
// from Twilio with the real credentials. It runs while the config is live,
// in every Caddy process that loads it, and stops when the config is
// stopped (reload, shutdown). Several nodes reconciling one ledger do not
// count a call twice.
type ReconcileConfig struct {
	// Off disables the reconciler: provisional costs then stay as they
	// are. Default false.
	Off bool `json:"off,omitempty"`

	// MinAge is how old an unpriced call must be before its price is
	// fetched. Default 2m.
	MinAge caddy.Duration `json:"min_age,omitempty"`

	// Interval is the time between runs. Default 1m.
	Interval caddy.Duration `json:"interval,omitempty"`

	// Batch bounds how many calls one run fetches. Default 100, at most
	// 10000.
	Batch int `json:"batch,omitempty"`

	// GiveUpAfter is how long after a call started its price may still be
	// null before its provisional cost is taken as final. Default 72h.
	GiveUpAfter caddy.Duration `json:"give_up_after,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Module) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  vendormodule.Namespace + "." + twilio.Name,
		New: func() caddy.Module { return new(Module) },
	}
}

// Provision expands the credentials.
func (m *Module) Provision(ctx caddy.Context) error {
	if err := m.Base.Provision(ctx); err != nil {
		return err
	}
	m.sid = strings.TrimSpace(m.Secret("account_sid", m.AccountSID))
	m.token = m.Secret("auth_token", m.AuthToken)
	m.apiKey = strings.TrimSpace(m.Expand(m.APIKey))
	return nil
}

// Validate checks the reconciler's settings.
func (m *Module) Validate() error {
	if rc := m.Reconcile; rc != nil {
		if rc.MinAge < 0 || rc.Interval < 0 || rc.GiveUpAfter < 0 || rc.Batch < 0 {
			return fmt.Errorf("reconcile: durations and batch must not be negative")
		}
		if rc.Batch > 10000 {
			return fmt.Errorf("reconcile: batch %d is over the limit of 10000", rc.Batch)
		}
	}
	return nil
}

// Vendor implements vendormodule.Module. The reconciler is made here, for
// the vendor's name, when it is on and the vendor has its credentials.
func (m *Module) Vendor(name string) (vendors.Vendor, error) {
	v, err := twilio.New(twilio.Config{
		AccountSID:       m.sid,
		AuthToken:        m.token,
		APIKey:           m.apiKey,
		Rates:            m.MessageRates,
		DefaultRate:      m.DefaultMessageRate,
		CallMaxUSD:       m.CallMaxUSD,
		VoiceRates:       m.VoiceRates,
		DefaultVoiceRate: m.DefaultVoiceRate,
		TwiMLURLs:        m.TwiMLURLs,
	})
	if err != nil {
		return nil, err
	}
	missing, _ := m.Missing()
	if (m.Reconcile == nil || !m.Reconcile.Off) && len(missing) == 0 {
		rc := ReconcileConfig{}
		if m.Reconcile != nil {
			rc = *m.Reconcile
		}
		base := m.ExpandedUpstream()
		if base == "" {
			base = twilio.DefaultReconcileBaseURL
		}
		if rc.MinAge == 0 {
			rc.MinAge = caddy.Duration(twilio.DefaultReconcileMinAge)
		}
		if rc.Interval == 0 {
			rc.Interval = caddy.Duration(twilio.DefaultReconcileInterval)
		}
		m.reconciler = &twilio.Reconciler{
			Vendor:      name,
			BaseURL:     base,
			AccountSID:  m.sid,
			AuthToken:   m.token,
			APIKey:      m.apiKey,
			MinAge:      time.Duration(rc.MinAge),
			Interval:    time.Duration(rc.Interval),
			Batch:       rc.Batch,
			GiveUpAfter: time.Duration(rc.GiveUpAfter),
		}
	}
	return v, nil
}

// Job implements vendormodule.JobRunner: the price reconciler, which also
// tells the call reconciler what became of a message or call.
func (m *Module) Job(store ledger.Store, logger *zap.Logger) *vendormodule.Job {
	rc := m.reconciler
	if rc == nil {
		return nil
	}
	rc.Store, rc.Logger = store, logger
	return &vendormodule.Job{
		Name: "Twilio price reconciler",
		Run:  rc.Run,
		Fields: []zap.Field{
			zap.String("upstream", rc.BaseURL),
			zap.Duration("interval", rc.Interval),
			zap.Duration("min_age", rc.MinAge),
		},
		Finder: rc,
	}
}

// Interface guards.
var (
	_ vendormodule.Module    = (*Module)(nil)
	_ vendormodule.JobRunner = (*Module)(nil)
	_ caddy.Validator        = (*Module)(nil)
)
