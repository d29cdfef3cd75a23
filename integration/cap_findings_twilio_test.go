package integration

import (
	"strings"
	"testing"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/money"
)

var twilioAll = []string{"GET /2010-04-01/Accounts/*/*", "POST /2010-04-01/Accounts/*/*", "POST /2010-04-01/Accounts/*/*/*",
	"GET /2010-04-01/Accounts/*/*/*", "POST /2010-04-01/Accounts/*", "POST /2010-04-01/Accounts.json", "POST /2010-04-01/Accounts"}

const twilioBase = "/2010-04-01/Accounts/" + simTwilioSID

func twilioPost(resource, body string, hdr ...string) capRequest {
	return capRequest{vendor: "twilio", method: "POST", path: twilioBase + "/" + resource, header: formHeader(hdr...), body: body}
}

// sms is a one-segment message to a US number.
func sms(text string) string {
	return form("To", "+15005550006", "From", "+15005550001", "Body", text)
}

// sendsThrough sends n messages and returns how many Twilio created; each
// other one must be refused at the cap (429).
func sendsThrough(t *testing.T, c capTarget, k capKey, n int, req func(i int) capRequest) int {
	t.Helper()
	sent := 0
	for i := range n {
		r := c.do(t, k, req(i))
		if r.status == 201 {
			sent++
		} else {
			wantStatus(t, "send over the cap", r, 429, "")
		}
	}
	return sent
}

// twilioCapCases: findings 1 (Twilio), 6, 7, 8, 9 and 10 (Twilio) of issue 7.
var twilioCapCases = []capCase{
	{"1/twilio-ignores-idempotency-keys", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("0.02")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		sent := sendsThrough(t, c, k, 20, func(i int) capRequest {
			return twilioPost("Messages.json", form("To", "+1500555"+strings.Repeat("0", 3)+itoa(int64(1000+i)),
				"From", "+15005550001", "Body", "message "+itoa(int64(i))), "Idempotency-Key", "same")
		})
		if sent != 2 {
			t.Errorf("%d sends went through on a $0.02 key at $0.0083 each; want 2", sent)
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"6/message-resources-with-any-extension", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("0.01")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		wantStatus(t, "Messages.json", c.do(t, k, twilioPost("Messages.json", sms("one"))), 201, "SM")
		for _, res := range []string{"Messages.json", "Messages.xml", "Messages", "messages.JSON"} {
			r := c.do(t, k, twilioPost(res, sms("again")))
			if r.status < 400 {
				t.Errorf("%s after the cap: %s", res, r)
			}
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"7/calls-bounded-by-their-reservation", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		// No TimeLimit: Twilio's four hours, $3.36 at $0.014 a minute.
		r := c.do(t, k, twilioPost("Calls.json", form("To", "+15005550006", "From", "+15005550001", "Url", "https://example.com/t.xml")))
		wantStatus(t, "call with no TimeLimit on a $1 key", r, 201, "CA")
		if moved := sim.Moved("twilio"); moved > int64(*cap) {
			t.Errorf("the call can cost %s on a $1 key", money.Micros(moved))
		}
		r = c.do(t, k, twilioPost("Calls.json", form("To", "+15005550006", "From", "+15005550001", "Url", "https://example.com/t.xml",
			"TimeLimit", "14400")))
		wantStatus(t, "a second four-hour call", r, 429, "")
		r = c.do(t, k, twilioPost("Calls.json", form("To", "+15005550006", "From", "+15005550001", "Url", "https://example.com/t.xml",
			"Record", "true", "TimeLimit", "60")))
		wantStatus(t, "a recorded call", r, 403, "cannot tell what this call will cost")
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"7/calls-run-only-twiml-keybrake-can-vouch-for", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		call := func(kv ...string) capResponse {
			return c.do(t, k, twilioPost("Calls.json", form(append([]string{"To", "+15005550006", "From", "+15005550001", "TimeLimit", "60"}, kv...)...)))
		}
		// TwiML fetched from a host the vendor block does not trust, a
		// TwiML App, inline TwiML that redirects, gathers or dials: each
		// could start legs billed on top of the call's minutes.
		for name, kv := range map[string][]string{
			"untrusted Url":         {"Url", "https://evil.example/dial.xml"},
			"look-alike host":       {"Url", "https://example.com.evil.example/dial.xml"},
			"untrusted FallbackUrl": {"Url", "https://example.com/t.xml", "FallbackUrl", "https://evil.example/f.xml"},
			"TwiML App":             {"ApplicationSid", "AP0123"},
			"Redirect":              {"Twiml", "<Response><Redirect>https://evil.example/dial.xml</Redirect></Response>"},
			"Gather":                {"Twiml", `<Response><Gather action="https://evil.example/next"/></Response>`},
			"Dial in a Say":         {"Twiml", `<Response><Say voice="man"><Dial>+33612345678</Dial></Say></Response>`},
			"Polly voice":           {"Twiml", `<Response><Say voice="Polly.Joanna">hi</Say></Response>`},
		} {
			wantStatus(t, name, call(kv...), 403, "cannot tell what this call will cost")
		}
		if moved := sim.Moved("twilio"); moved != 0 {
			t.Errorf("refused calls moved %s", money.Micros(moved))
		}
		wantStatus(t, "trusted Url", call("Url", "https://example.com/t.xml"), 201, "CA")
		wantStatus(t, "inline TwiML that only says and plays", call("Twiml",
			`<Response><Say voice="woman">Your code is 1234</Say><Play>https://example.com/a.mp3</Play></Response>`), 201, "CA")
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"8/twilio-keys-that-mint-keys", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		for _, req := range []capRequest{
			twilioPost("Keys.json", form("FriendlyName", "mine")),
			twilioPost("Keys", form("FriendlyName", "mine")),
			twilioPost("SigningKeys.json", form("FriendlyName", "mine")),
			{vendor: "twilio", method: "POST", path: "/2010-04-01/Accounts.json", header: formHeader(), body: form("FriendlyName", "sub")},
		} {
			wantStatus(t, req.path, c.do(t, k, req), 403, "")
		}
		for _, e := range sim.Events() {
			if e.Kind == simvendor.KindCredentialMinted {
				t.Errorf("a credential was minted: %+v", e.Object)
			}
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"9/twilio-estimates-never-count-low", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("0.05")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		long := strings.Repeat("ж", 500) // UCS-2: 8 segments, $0.0664
		for _, req := range []capRequest{
			twilioPost("Messages.json", form("To", "+15005550006", "To", "+15005550007", "From", "+15005550001", "Body", "hi")),
			twilioPost("Messages.json", form("To", "+15005550006", "From", "+15005550001", "Body", "hi", "Body", long)),
			twilioPost("Messages.json", form("To", "+15005550006", "From", "+15005550001", "ContentSid", "HX00000000000000000000000000000001")),
		} {
			if r := c.do(t, k, req); r.status < 400 {
				t.Errorf("%s: %s", req.body, r)
			}
		}
		wantStatus(t, "a long unicode message over the cap", c.do(t, k, twilioPost("Messages.json", sms(long))), 429, "")
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"10/vault-key-as-twilio-user-stays-out-of-the-audit", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		cap := usdOf("1")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		// twilio-go puts its username in the path as the account SID.
		r := c.do(t, k, capRequest{vendor: "twilio", method: "POST", path: "/2010-04-01/Accounts/" + k.secret + "/Messages.json",
			header: formHeader(), body: sms("hello")})
		wantStatus(t, "send with the vault key as the account", r, 201, "SM")
		if sim.SawString(k.secret) {
			t.Error("the vault key reached the vendor")
		}
		if n, ok := c.(capNode); ok {
			if log := n.n.log(t); strings.Contains(log, k.secret) {
				t.Error("the vault key is in Caddy's log")
			}
			for _, a := range audit(t, n.n, k.label) {
				if strings.Contains(a.Path, k.secret) {
					t.Errorf("the vault key is in the audited path %q", a.Path)
				}
			}
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
	{"issue21/sms-segments-never-split-a-character", func(t *testing.T, c capTarget, sim *simvendor.Sim) {
		// 66 × a, e + U+0301, 66 × a: 134 UTF-16 units that Twilio sends in
		// three segments, since the é is never split. A key capped at
		// twenty segments ($0.166) sends six such messages, not ten.
		cap := usdOf("0.166")
		k := c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: twilioAll})
		body := strings.Repeat("a", 66) + "e\u0301" + strings.Repeat("a", 66)
		sent := sendsThrough(t, c, k, 10, func(int) capRequest { return twilioPost("Messages.json", sms(body)) })
		if sent != 6 {
			t.Errorf("%d three-segment messages went through on a twenty-segment key; want 6", sent)
		}
		if moved := money.Micros(sim.Moved("twilio")); moved != 6*3*8_300 {
			t.Errorf("Twilio moved %s; want 18 segments, %s", moved, money.Micros(6*3*8_300))
		}
		wantWithinCap(t, c, sim, k, *cap)
	}},
}
