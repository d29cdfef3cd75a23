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

// smsText is a message body of random length and alphabet: GSM-7 (with
// extension characters that count double) or UCS-2.
func (s *capSeq) smsText() string {
	n := 1 + s.rng.IntN(700)
	alphabet := []string{"a", "€", "ж", "😀", " "}[s.rng.IntN(5)]
	return strings.Repeat(alphabet, n)
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
		s.do(twilioPost(s.twilioResource("Messages"), form("To", "+1500555"+strconv.Itoa(1000+s.rng.IntN(9000)),
			"From", "+15005550001", "Body", s.smsText()), hdr...))
	}},
	{"mms", func(s *capSeq) {
		kv := []string{"To", "+15005550006", "From", "+15005550001", "Body", s.smsText()}
		for range 1 + s.rng.IntN(12) {
			kv = append(kv, "MediaUrl", "https://example.com/p.png")
		}
		s.do(twilioPost(s.twilioResource("Messages"), form(kv...)))
	}},
	{"call", func(s *capSeq) {
		kv := []string{"To", "+15005550006", "From", "+15005550001", "Url", "https://example.com/t.xml"}
		if s.rng.IntN(3) > 0 {
			kv = append(kv, "TimeLimit", strconv.Itoa(1+s.rng.IntN(20000)))
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

func (s *capSeq) recipients() string {
	n := 1 + s.rng.IntN(8)
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = "r" + strconv.Itoa(i) + "@example.com"
	}
	if s.rng.IntN(2) == 0 {
		return `"` + strings.Join(addrs, ",") + `"`
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
		n := 1 + s.rng.IntN(5)
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
