package simvendor

import (
	"net/http"
	"sync"
	"time"
)

// Vendor names, as Keybrake spells them.
const (
	VendorStripe = "stripe"
	VendorTwilio = "twilio"
	VendorResend = "resend"
)

// Default prices in micro-dollars: Twilio's US prices for an SMS segment, an
// MMS and an outbound voice minute, and Resend's overage price per email.
const (
	DefaultSMSPrice         int64 = 8_300
	DefaultMMSPrice         int64 = 22_000
	DefaultVoicePerMinute   int64 = 14_000
	DefaultEmailPrice       int64 = 900
	DefaultCallLimitSeconds       = 14_400
)

// DefaultStripeSearchLag is how long the simulated Stripe's search takes
// to see a new PaymentIntent: the minute Stripe documents as typical
// ("data is typically searchable in under 1 minute"); in incidents it is
// longer.
const DefaultStripeSearchLag = time.Minute

// DefaultOvercapturePercent is the largest percentage above the authorised
// amount that Stripe's overcapture page lists for any card brand ("+30%",
// Mastercard, US eating places and restaurants;
// https://docs.stripe.com/payments/overcapture, "Availability by card
// network"). The simulator lets every overcapture-enabled PaymentIntent
// capture up to it: the most any merchant could.
const DefaultOvercapturePercent = 30

// Config is what the simulated vendors accept and charge.
type Config struct {
	// StripeSecretKey is the one secret key Stripe accepts (Bearer, or Basic
	// with the key as the user name).
	StripeSecretKey string
	// TwilioAccountSID and TwilioAuthToken are the account's Basic
	// credentials; API keys minted through Keys.json and sub-accounts
	// created through Accounts.json are accepted too once they exist.
	TwilioAccountSID string
	TwilioAuthToken  string
	// ResendAPIKey is the Bearer token Resend accepts; keys minted through
	// POST /api-keys are accepted too.
	ResendAPIKey string

	// Now is the clock (default time.Now).
	Now func() time.Time

	// Rates converts a currency to USD: micro-dollars per major unit of the
	// currency (gbp: 1_270_000 means £1 = $1.27), or per unit for a
	// zero-decimal currency (jpy: per yen). USD is always 1_000_000. A
	// Stripe amount in a currency with no rate is answered with a 500 and
	// noted in Problems: the simulator cannot referee what it cannot count.
	Rates map[string]int64
	// OvercapturePercent bounds a Stripe overcapture (default
	// DefaultOvercapturePercent).
	OvercapturePercent int64

	// TwilioSMSPrice is the price of one SMS segment, TwilioMMSPrice of one
	// MMS, TwilioVoicePerMinute of one started minute of an outbound call
	// (defaults: DefaultSMSPrice, DefaultMMSPrice, DefaultVoicePerMinute).
	TwilioSMSPrice       int64
	TwilioMMSPrice       int64
	TwilioVoicePerMinute int64
	// TwilioCallLimitSeconds is the account's maximum call duration: the
	// duration of a call created without TimeLimit, and the ceiling of
	// TimeLimit (default 14400, Twilio's four hours; an account can raise it
	// to 24 hours in the Console).
	TwilioCallLimitSeconds int
	// TwilioContentTemplates maps a Content API ContentSid (HX…) to the
	// template's body, with {{1}}-style placeholders that ContentVariables
	// fill in. A message by ContentSid is priced on the filled body.
	TwilioContentTemplates map[string]string

	// StripeSearchLag is how long after its creation a PaymentIntent is
	// found by search; lists show it at once (default
	// DefaultStripeSearchLag; negative: at once).
	StripeSearchLag time.Duration

	// ResendEmailPrice is the price of one email to one recipient (default
	// DefaultEmailPrice).
	ResendEmailPrice int64

	// BeforeExecute, if set, is called for every authenticated request just
	// before the endpoint executes, outside the simulator's lock and while
	// an idempotency key the request carries is marked in flight. A test
	// can block in it to make requests overlap.
	BeforeExecute func(vendor string, r *http.Request)
}

// Sim is the simulated vendors. Its methods are safe for concurrent use.
type Sim struct {
	cfg Config

	mu       sync.Mutex
	seq      uint64
	events   []Event
	held     map[string]int64
	requests []Request
	problems []string
	idem     *idemStore
	stripe   *stripeState
	twilio   *twilioState
	resend   *resendState
}

// New returns a simulator with cfg, defaults filled in.
func New(cfg Config) *Sim {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OvercapturePercent == 0 {
		cfg.OvercapturePercent = DefaultOvercapturePercent
	}
	if cfg.TwilioSMSPrice == 0 {
		cfg.TwilioSMSPrice = DefaultSMSPrice
	}
	if cfg.TwilioMMSPrice == 0 {
		cfg.TwilioMMSPrice = DefaultMMSPrice
	}
	if cfg.TwilioVoicePerMinute == 0 {
		cfg.TwilioVoicePerMinute = DefaultVoicePerMinute
	}
	if cfg.TwilioCallLimitSeconds == 0 {
		cfg.TwilioCallLimitSeconds = DefaultCallLimitSeconds
	}
	if cfg.StripeSearchLag == 0 {
		cfg.StripeSearchLag = DefaultStripeSearchLag
	}
	if cfg.ResendEmailPrice == 0 {
		cfg.ResendEmailPrice = DefaultEmailPrice
	}
	s := &Sim{cfg: cfg}
	s.reset()
	return s
}

// Reset forgets every object, event, request, idempotency key and minted
// credential, as if the simulator were new.
func (s *Sim) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
}

func (s *Sim) reset() {
	s.events = nil
	s.held = map[string]int64{}
	s.requests = nil
	s.problems = nil
	s.idem = newIdemStore()
	s.stripe = newStripeState()
	s.twilio = newTwilioState(s.cfg)
	s.resend = newResendState(s.cfg)
}

// now reads the injected clock.
func (s *Sim) now() time.Time { return s.cfg.Now() }

// problem notes something the simulator could not referee (a missing rate,
// an endpoint it does not simulate). Called with s.mu held.
func (s *Sim) problem(msg string) { s.problems = append(s.problems, msg) }

// Problems lists what the simulator could not referee: requests to
// endpoints it does not simulate, amounts in currencies without a rate. A
// cap test should fail when this is not empty.
func (s *Sim) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// beforeExecute runs the test hook outside the lock.
func (s *Sim) beforeExecute(vendor string, r *http.Request) {
	if s.cfg.BeforeExecute == nil {
		return
	}
	s.mu.Unlock()
	defer s.mu.Lock()
	s.cfg.BeforeExecute(vendor, r)
}
