package integration

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/resend"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// The Twilio and Resend parts of the model test.

func simOtherVendors(t testing.TB) map[string]vendors.Vendor {
	tw, err := twilio.New(twilio.Config{AccountSID: simTwilioSID, AuthToken: simTwilioToken, TwiMLURLs: []string{"https://example.com/"}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := resend.New(resend.Config{APIKey: simResendKey})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]vendors.Vendor{"twilio": tw, "resend": rs}
}

func otherVendorNames() []string { return []string{"twilio", "resend"} }

func otherVendorOps(vendor string) []capOp {
	if vendor == "twilio" {
		return twilioOps
	}
	return resendOps
}

func otherVendorEndpoints(vendor string) []string {
	if vendor == "twilio" {
		return twilioAll
	}
	return resendAll
}

// smsText is a message body from the whole space a caller can send
// (integration/sms_bodies_test.go): empty, GSM-7 with extension characters
// at segment edges, every script and kind of character, up to past
// Twilio's 1,600 characters.
func (s *capSeq) smsText() string {
	return smsBody(s.rng)
}

// smsTo is a US number most often, else a destination Keybrake has no rate
// for, another channel, a number with spaces around it, or none.
func (s *capSeq) smsTo() string {
	if s.rng.IntN(5) > 0 {
		return "+1500555" + strconv.Itoa(1000+s.rng.IntN(9000))
	}
	return []string{"+447700900123", "whatsapp:+15005550006", " +15005550006 ", "", "+1787555 0100", "5005550006"}[s.rng.IntN(6)]
}

// mediaCount is how many MediaUrl a message has: none, one, Twilio's
// largest (10) and one more, or in between.
func (s *capSeq) mediaCount() int {
	return []int{0, 1, 2, 9, 10, 11, 1 + s.rng.IntN(12)}[s.rng.IntN(7)]
}

// timeLimit is a call's TimeLimit: absent (Twilio's four hours), the
// edges of a minute and of Twilio's 14,400 s, or no number at all.
func (s *capSeq) timeLimit() (string, bool) {
	if s.rng.IntN(4) == 0 {
		return "", false
	}
	edges := []string{"0", "1", "59", "60", "61", "119", "120", "3600", "14399", "14400", "14401", "86400",
		"-1", "1.5", "abc", "", "9999999999999999999", strconv.Itoa(1 + s.rng.IntN(20000))}
	return edges[s.rng.IntN(len(edges))], true
}

func (s *capSeq) twilioResource(name string) string {
	return name + []string{".json", ".xml", ""}[s.rng.IntN(3)]
}

var twilioOps = []capOp{
	{"sms", func(s *capSeq) {
		hdr := []string{}
		if s.rng.IntN(3) == 0 {
			hdr = append(hdr, "Idempotency-Key", "same")
		}
		s.do(twilioPost(s.twilioResource("Messages"), form("To", s.smsTo(),
			"From", "+15005550001", "Body", s.smsText()), hdr...))
	}},
	{"mms", func(s *capSeq) {
		kv := []string{"To", s.smsTo(), "From", "+15005550001"}
		if s.rng.IntN(4) > 0 {
			kv = append(kv, "Body", s.smsText())
		}
		n := s.mediaCount()
		if n == 0 || s.rng.IntN(4) == 0 {
			kv = append(kv, "SendAsMms", []string{"true", "True", "false"}[s.rng.IntN(3)])
		}
		for range n {
			kv = append(kv, "MediaUrl", "https://example.com/p.png")
		}
		s.do(twilioPost(s.twilioResource("Messages"), form(kv...)))
	}},
	{"call", func(s *capSeq) {
		kv := []string{"To", s.smsTo(), "From", "+15005550001", "Url", "https://example.com/t.xml"}
		if v, ok := s.timeLimit(); ok {
			kv = append(kv, "TimeLimit", v)
		}
		s.do(twilioPost(s.twilioResource("Calls"), form(kv...)))
	}},
	{"call running TwiML it cannot see", func(s *capSeq) {
		kv := []string{"To", "+15005550006", "From", "+15005550001", "TimeLimit", "60"}
		switch s.rng.IntN(3) {
		case 0:
			kv = append(kv, "Url", "https://evil.example/dial.xml")
		case 1:
			kv = append(kv, "Twiml", "<Response><Redirect>https://evil.example/dial.xml</Redirect></Response>")
		default:
			kv = append(kv, "ApplicationSid", "AP0123")
		}
		r := s.do(twilioPost(s.twilioResource("Calls"), form(kv...)))
		if r.status != http.StatusForbidden {
			s.t.Errorf("call running TwiML Keybrake cannot see: %s", r)
		}
	}},
	{"smuggled duplicates", func(s *capSeq) {
		s.do(twilioPost("Messages.json", form("To", "+15005550006", "From", "+15005550001", "Body", "hi", "Body", s.smsText())))
	}},
	{"mint a key", func(s *capSeq) {
		r := s.do(twilioPost(s.twilioResource("Keys"), form("FriendlyName", "k")))
		if r.status != http.StatusForbidden {
			s.t.Errorf("Keys: %s", r)
		}
	}},
}

// recipients is a to, cc or bcc field: a few addresses most often, else
// none, one, Resend's largest to (50) and one more, or a hundred; as an
// array or a comma-separated string, with display names now and then, the
// same address twice now and then.
func (s *capSeq) recipients() string {
	n := 1 + s.rng.IntN(8)
	if s.rng.IntN(4) == 0 {
		n = []int{0, 1, 2, 49, 50, 51, 100}[s.rng.IntN(7)]
	}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = "r" + strconv.Itoa(i) + "@example.com"
		switch s.rng.IntN(8) {
		case 0:
			addrs[i] = "Reader " + strconv.Itoa(i) + " <" + addrs[i] + ">"
		case 1:
			addrs[i] = "r0@example.com"
		}
	}
	if s.rng.IntN(2) == 0 {
		return `"` + strings.Join(addrs, []string{",", ", "}[s.rng.IntN(2)]) + `"`
	}
	if n == 0 {
		return "[]"
	}
	return `["` + strings.Join(addrs, `","`) + `"]`
}

func (s *capSeq) email() string {
	e := `{"from":"a@example.com","to":` + s.recipients()
	if s.rng.IntN(3) == 0 {
		e += `,"cc":` + s.recipients()
	}
	if s.rng.IntN(4) == 0 {
		e += `,"bcc":` + s.recipients()
	}
	return e + `,"subject":"s","html":"x"}`
}

var resendOps = []capOp{
	{"email", func(s *capSeq) {
		hdr := []string{}
		if s.rng.IntN(3) == 0 {
			hdr = append(hdr, "Idempotency-Key", "k"+strconv.Itoa(s.rng.IntN(2)))
		}
		s.do(resendPost("/emails", s.email(), hdr...))
	}},
	{"batch", func(s *capSeq) {
		// A few emails most often, else none, one, Resend's largest batch
		// (100) and one more.
		n := 1 + s.rng.IntN(5)
		if s.rng.IntN(4) == 0 {
			n = []int{0, 1, 100, 101}[s.rng.IntN(4)]
		}
		emails := make([]string, n)
		for i := range emails {
			emails[i] = s.email()
		}
		s.do(resendPost("/emails/batch", "["+strings.Join(emails, ",")+"]"))
	}},
	{"replay the last, honest or altered", func(s *capSeq) {
		if s.last == nil {
			return
		}
		req := *s.last
		req.header = req.header.Clone()
		req.header.Set("Idempotency-Key", "k"+strconv.Itoa(s.rng.IntN(2)))
		if s.rng.IntN(2) == 0 && req.path == "/emails" {
			req.body = s.email()
		}
		s.do(req)
	}},
	{"json as a form", func(s *capSeq) {
		r := s.do(capRequest{vendor: "resend", method: "POST", path: "/emails", header: formHeader(), body: s.email()})
		if r.status < 400 {
			s.t.Errorf("a JSON body sent as a form: %s", r)
		}
	}},
	{"mint a key", func(s *capSeq) {
		if r := s.do(resendPost("/api-keys", `{"name":"k"}`)); r.status != http.StatusForbidden {
			s.t.Errorf("api-keys: %s", r)
		}
	}},
}
