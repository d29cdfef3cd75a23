package simvendor

import "time"

// Kind says what an Event did.
type Kind string

// Event kinds. Kinds marked "moves" add their Micros to Moved; the others
// are logged with the Micros they hold (an authorisation) or zero.
const (
	KindCapture          Kind = "capture"           // moves: card funds captured
	KindRefund           Kind = "refund"            // moves: money returned to a card
	KindTransfer         Kind = "transfer"          // moves: Stripe Connect transfer
	KindPayout           Kind = "payout"            // moves: Stripe payout to a bank
	KindInvoicePaid      Kind = "invoice_paid"      // moves: an invoice collected
	KindTreasuryOutbound Kind = "treasury_outbound" // moves: Treasury money out
	KindSMS              Kind = "sms"               // moves: segments × SMS price
	KindMMS              Kind = "mms"               // moves: one MMS
	KindCall             Kind = "call"              // moves: a call's whole TimeLimit
	KindCallExtended     Kind = "call_extended"     // moves: minutes added to a live call
	KindEmail            Kind = "email"             // moves: recipients × email price
	KindAuthorize        Kind = "authorize"         // holds: an authorisation placed or raised
	KindRelease          Kind = "release"           // an authorisation released unused
	KindCredentialMinted Kind = "credential_minted" // a new vendor credential exists
	KindCardIssued       Kind = "card_issued"       // a Stripe Issuing card exists
)

// moves reports whether k moves money.
func (k Kind) moves() bool {
	switch k {
	case KindCapture, KindRefund, KindTransfer, KindPayout, KindInvoicePaid,
		KindTreasuryOutbound, KindSMS, KindMMS, KindCall, KindCallExtended, KindEmail:
		return true
	}
	return false
}

// Event is one money movement (or a hold, or a minted credential).
type Event struct {
	Vendor  string
	Account string // Stripe-Account ("" for the platform), Twilio account SID, Resend ""
	Object  string // the object that moved the money: pi_…, ch_…, re_…, SM…, CA…, an email id
	Kind    Kind
	Micros  int64  // USD micro-dollars moved (or held, for KindAuthorize and KindRelease)
	Amount  int64  // in the vendor's own unit: Stripe minor units, Twilio segments/minutes, Resend recipients
	Unit    string // currency (Stripe), "segment", "mms", "minute", "recipient"
	Secret  string // for KindCredentialMinted: the new credential's secret
	At      time.Time
	Note    string
}

// record appends an event. Called with s.mu held.
func (s *Sim) record(e Event) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	s.events = append(s.events, e)
	switch e.Kind {
	case KindAuthorize:
		s.held[e.Vendor] += e.Micros
	case KindRelease:
		s.held[e.Vendor] -= e.Micros
	}
}

// Moved returns the micro-dollars vendor has moved ("" for all vendors).
func (s *Sim) Moved(vendor string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var n int64
	for _, e := range s.events {
		if e.Kind.moves() && (vendor == "" || e.Vendor == vendor) {
			n += e.Micros
		}
	}
	return n
}

// Authorized returns the micro-dollars vendor holds on cards right now:
// authorisations placed and not yet captured, released or lapsed.
func (s *Sim) Authorized(vendor string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	if vendor == "" {
		var n int64
		for _, v := range s.held {
			n += v
		}
		return n
	}
	return s.held[vendor]
}

// Events returns a copy of the event log, oldest first.
func (s *Sim) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	return append([]Event(nil), s.events...)
}

// advance lets the clock do what the vendors do on their own (Stripe
// renewals, collections, lapsed authorisations). Called with s.mu held.
func (s *Sim) advance() { s.stripeAdvance(s.now()) }
