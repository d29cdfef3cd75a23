package simvendor

import "fmt"

// Identifiers are sequential, so a test run is reproducible, and shaped like
// the vendors' own.

// stripeID returns a Stripe-style id such as pi_sim000000000000000042.
func (s *Sim) stripeID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_sim%021d", prefix, s.seq)
}

// twilioSID returns a Twilio SID: two letters and 32 hex digits.
func (s *Sim) twilioSID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%032x", prefix, s.seq)
}

// resendID returns a UUID-shaped Resend id.
func (s *Sim) resendID() string {
	s.seq++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", s.seq>>48, s.seq)
}

// secret returns a fresh credential secret.
func (s *Sim) secret(prefix string) string {
	s.seq++
	return fmt.Sprintf("%ssimsecret%024d", prefix, s.seq)
}
