package twilio

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// estimate runs Estimate on a form POST (or another method with no body).
func estimate(t *testing.T, v *Vendor, method, path string, form url.Values) (vendors.Estimate, *vendors.Error) {
	t.Helper()
	r, body := formReq(method, path, form)
	est, err := v.Estimate(r, body)
	if err == nil {
		return est, nil
	}
	var ve *vendors.Error
	if !errors.As(err, &ve) {
		t.Fatalf("%s %s: error %T %v is not a *vendors.Error", method, path, err, err)
	}
	return est, ve
}

const acct = "/2010-04-01/Accounts/AC1/"

// Finding 6: Messages.json, Messages.xml and Messages are one resource.
func TestResourceNamesWithoutExtension(t *testing.T) {
	v := newVendor(t, Config{})
	msg := url.Values{"To": {"+14155550100"}, "Body": {"hi"}}
	call := url.Values{"To": {"+14155550100"}, "TimeLimit": {"60"}}
	for _, c := range []struct {
		path string
		form url.Values
		want money.Micros
	}{
		{"Messages.json", msg, DefaultSMS},
		{"Messages.xml", msg, DefaultSMS},
		{"Messages", msg, DefaultSMS},
		{"Messages/", msg, DefaultSMS},
		{"messages.json", msg, DefaultSMS},
		{"Calls.json", call, DefaultVoicePerMinute},
		{"Calls.xml", call, DefaultVoicePerMinute},
		{"Calls", call, DefaultVoicePerMinute},
		{"Conferences/CF1/Participants.xml", call, DefaultVoicePerMinute},
		{"Conferences/CF1/Participants", call, DefaultVoicePerMinute},
	} {
		est, ve := estimate(t, v, http.MethodPost, acct+c.path, c.form)
		if ve != nil || !est.Known || est.Cost != c.want {
			t.Errorf("%s: %+v %v; want %v", c.path, est, ve, c.want)
		}
	}
	for _, p := range []string{"IncomingPhoneNumbers", "IncomingPhoneNumbers.xml", "IncomingPhoneNumbers/Local", "IncomingPhoneNumbers/TollFree.xml"} {
		if est, ve := estimate(t, v, http.MethodPost, acct+p, url.Values{"PhoneNumber": {"+1"}}); ve != nil || est.Known {
			t.Errorf("%s: %+v %v; want unknown", p, est, ve)
		}
	}
	for _, p := range []string{"Keys", "Keys.json", "Keys.xml", "SigningKeys", "SigningKeys.xml"} {
		if _, ve := estimate(t, v, http.MethodPost, acct+p, nil); ve == nil || ve.Status != http.StatusForbidden {
			t.Errorf("%s: %v; want the credential refusal", p, ve)
		}
	}
}

// Finding 7: a call is priced from TimeLimit (Twilio's default 4 h) per
// started minute, reserves at least one minute, and Fit bounds TimeLimit
// to what was reserved.
func TestCallPricedByTimeLimit(t *testing.T) {
	v := newVendor(t, Config{
		VoiceRates:       VoiceRateTable{"+44": {PerMinute: 20_000}, "+447": {Unknown: true}},
		DefaultVoiceRate: 0,
	})
	us := "+14155550100"
	cases := []struct {
		name  string
		form  url.Values
		want  money.Micros
		known bool
	}{
		{"no TimeLimit: 14400 s", url.Values{"To": {us}, "Url": {"https://x"}}, 240 * 14_000, true},
		{"TimeLimit 14400", url.Values{"To": {us}, "TimeLimit": {"14400"}}, 240 * 14_000, true},
		{"TimeLimit 61: two started minutes", url.Values{"To": {us}, "TimeLimit": {"61"}}, 2 * 14_000, true},
		{"TimeLimit 60", url.Values{"To": {us}, "TimeLimit": {"60"}}, 14_000, true},
		{"+44 rate", url.Values{"To": {"+442079460000"}, "TimeLimit": {"120"}}, 40_000, true},
		{"+447 carved out", url.Values{"To": {"+447700900123"}}, 0, false},
		{"Alaska carved out of +1", url.Values{"To": {"+19075550100"}}, 0, false},
		{"unknown country", url.Values{"To": {"+33612345678"}}, 0, false},
		{"client: address", url.Values{"To": {"client:alice"}}, 0, false},
		{"no To", url.Values{"Url": {"https://x"}}, 0, false},
		{"Record", url.Values{"To": {us}, "Record": {"true"}}, 0, false},
		{"Record false is fine", url.Values{"To": {us}, "Record": {"false"}, "TimeLimit": {"60"}}, 14_000, true},
		{"MachineDetection", url.Values{"To": {us}, "MachineDetection": {"Enable"}}, 0, false},
		{"AsyncAmd", url.Values{"To": {us}, "AsyncAmd": {"true"}}, 0, false},
		{"Transcribe", url.Values{"To": {us}, "Transcribe": {"true"}}, 0, false},
		{"RecordingConfigurationId", url.Values{"To": {us}, "RecordingConfigurationId": {"x"}}, 0, false},
		{"inline TwiML that dials", url.Values{"To": {us}, "Twiml": {"<Response><Dial>+33612345678</Dial></Response>"}}, 0, false},
		{"inline TwiML that records", url.Values{"To": {us}, "Twiml": {"<Response><RECORD/></Response>"}}, 0, false},
		{"inline TwiML that says in a basic voice", url.Values{"To": {us}, "Twiml": {`<Response><Say voice="woman">hi</Say><Pause length="2"/><Play>https://x/a.mp3</Play><Hangup/></Response>`}, "TimeLimit": {"60"}}, 14_000, true},
		{"inline TwiML that says in the account's default voice", url.Values{"To": {us}, "Twiml": {"<Response><Say>hi</Say></Response>"}, "TimeLimit": {"60"}}, 0, false},
		{"inline TwiML that says in Polly", url.Values{"To": {us}, "Twiml": {`<Response><Say voice="Polly.Joanna">hi</Say></Response>`}, "TimeLimit": {"60"}}, 0, false},
		{"inline TwiML that redirects", url.Values{"To": {us}, "Twiml": {"<Response><Redirect>https://evil.example/dial.xml</Redirect></Response>"}}, 0, false},
		{"inline TwiML that gathers into another document", url.Values{"To": {us}, "Twiml": {`<Response><Gather action="https://evil.example/next"/></Response>`}}, 0, false},
		{"inline TwiML that texts", url.Values{"To": {us}, "Twiml": {"<Response><Sms>hi</Sms></Response>"}}, 0, false},
		{"inline TwiML with a dial nested in a say", url.Values{"To": {us}, "Twiml": {`<Response><Say voice="man"><Dial>+33612345678</Dial></Say></Response>`}}, 0, false},
		{"inline TwiML that is not XML", url.Values{"To": {us}, "Twiml": {"<Response><Dial>+33612345678</Response>"}}, 0, false},
		{"inline TwiML with a namespaced dial", url.Values{"To": {us}, "Twiml": {`<Response xmlns:t="x"><t:Dial>+33612345678</t:Dial></Response>`}}, 0, false},
		{"inline TwiML that is no Response", url.Values{"To": {us}, "Twiml": {"<Dial>+33612345678</Dial>"}}, 0, false},
		{"a TwiML App", url.Values{"To": {us}, "ApplicationSid": {"AP1"}, "TimeLimit": {"60"}}, 0, false},
		{"Url not vouched for", url.Values{"To": {us}, "Url": {"https://evil.example/dial.xml"}, "TimeLimit": {"60"}}, 0, false},
		{"Url on a look-alike host", url.Values{"To": {us}, "Url": {"https://x.evil.example/t"}, "TimeLimit": {"60"}}, 0, false},
		{"Url with user info", url.Values{"To": {us}, "Url": {"https://x@evil.example/t"}, "TimeLimit": {"60"}}, 0, false},
		{"FallbackUrl not vouched for", url.Values{"To": {us}, "Url": {"https://x/t"}, "FallbackUrl": {"https://evil.example/f"}, "TimeLimit": {"60"}}, 0, false},
	}
	for _, c := range cases {
		est, ve := estimate(t, v, http.MethodPost, acct+"Calls.json", c.form)
		if ve != nil || est.Known != c.known || (c.known && est.Cost != c.want) {
			t.Errorf("%s: %+v %v; want %v known=%v", c.name, est, ve, c.want, c.known)
		}
		if !est.Known && est.Reason == "" {
			t.Errorf("%s: no reason", c.name)
		}
	}
	// A participant records with ConferenceRecord too.
	if est, ve := estimate(t, v, http.MethodPost, acct+"Conferences/CF1/Participants.json",
		url.Values{"To": {us}, "ConferenceRecord": {"record-from-start"}}); ve != nil || est.Known {
		t.Errorf("ConferenceRecord: %+v %v", est, ve)
	}
	// Malformed or ambiguous TimeLimits are refused.
	for _, tl := range [][]string{{"0"}, {"-60"}, {"1.5"}, {"86401"}, {"60", "14400"}} {
		if _, ve := estimate(t, v, http.MethodPost, acct+"Calls.json", url.Values{"To": {us}, "TimeLimit": tl}); ve == nil || ve.Status != 400 {
			t.Errorf("TimeLimit %v: %v; want 400", tl, ve)
		}
	}
	r, body := formReq(http.MethodPost, acct+"Calls.json", nil)
	body = []byte("To=%2B14155550100&TimeLimit=60&timelimit=14400")
	if _, err := v.Estimate(r, body); err == nil || !strings.Contains(err.Error(), "letter case") {
		t.Errorf("TimeLimit in two cases: %v", err)
	}
}

func TestCallFit(t *testing.T) {
	v := newVendor(t, Config{})
	r, _ := formReq(http.MethodPost, acct+"Calls.json", nil)
	body := []byte("To=%2B14155550100&From=%2B15005550006&Url=https%3A%2F%2Fx%2Ft&timelimit=14400&StatusCallbackEvent=ringing&StatusCallbackEvent=answered")
	est, err := v.Estimate(r, body)
	if err != nil || est.Cost != 240*14_000 || est.Minimum != 14_000 || est.Fit == nil {
		t.Fatalf("estimate %+v %v", est, err)
	}
	cases := []struct {
		reserved money.Micros
		limit    string
	}{
		{14_000, "60"},
		{27_999, "60"}, // one minute and change: still one minute
		{28_000, "120"},
		{240 * 14_000, "14400"},
	}
	for _, c := range cases {
		out, err := est.Fit(c.reserved)
		if err != nil {
			t.Fatalf("Fit(%v): %v", c.reserved, err)
		}
		form, err := url.ParseQuery(string(out))
		if err != nil {
			t.Fatal(err)
		}
		if got := form["TimeLimit"]; len(got) != 1 || got[0] != c.limit {
			t.Errorf("Fit(%v): TimeLimit %v; want [%s]", c.reserved, got, c.limit)
		}
		if _, ok := form["timelimit"]; ok {
			t.Errorf("Fit(%v) kept the lower-case time limit: %s", c.reserved, out)
		}
		if !strings.HasPrefix(string(out), "To=%2B14155550100&From=%2B15005550006&Url=https%3A%2F%2Fx%2Ft&StatusCallbackEvent=ringing&StatusCallbackEvent=answered&") {
			t.Errorf("Fit(%v) changed the other parameters: %s", c.reserved, out)
		}
	}
	// A smaller TimeLimit than the reservation buys is kept.
	r, body = formReq(http.MethodPost, acct+"Calls.json", url.Values{"To": {"+14155550100"}, "TimeLimit": {"90"}})
	est, _ = v.Estimate(r, body)
	if out, _ := est.Fit(est.Cost); !strings.HasSuffix(string(out), "TimeLimit=90") {
		t.Errorf("Fit kept %s", out)
	}
	// call_max lowers TimeLimit by itself.
	capped := newVendor(t, Config{CallMaxUSD: 100_000})
	r, body = formReq(http.MethodPost, acct+"Calls.json", url.Values{"To": {"+14155550100"}})
	est, _ = capped.Estimate(r, body)
	if est.Cost != 7*14_000 {
		t.Fatalf("call_max estimate %+v", est)
	}
	if out, _ := est.Fit(est.Cost); !strings.HasSuffix(string(out), "TimeLimit=420") {
		t.Errorf("call_max Fit %s", out)
	}
	// call_max buying exactly one minute: the request must bound itself,
	// since Minimum == Cost leaves nothing for Fit to do.
	one := newVendor(t, Config{CallMaxUSD: 20_000})
	if est, _ := one.Estimate(r, body); est.Known {
		t.Errorf("call_max of one minute, no TimeLimit: %+v", est)
	}
	r1, b1 := formReq(http.MethodPost, acct+"Calls.json", url.Values{"To": {"+14155550100"}, "TimeLimit": {"45"}})
	if est, _ := one.Estimate(r1, b1); !est.Known || est.Cost != 14_000 {
		t.Errorf("call_max of one minute, TimeLimit 45: %+v", est)
	}
	tiny := newVendor(t, Config{CallMaxUSD: 1})
	if est, _ := tiny.Estimate(r, body); est.Known {
		t.Errorf("call_max below a minute: %+v", est)
	}
}

// Updates: hanging up is free; anything that can redirect or extend a call,
// or change a message, is not on the free list.
func TestUpdatesFreeOnlyForStatedReasons(t *testing.T) {
	v := newVendor(t, Config{})
	cases := []struct {
		path  string
		form  url.Values
		known bool
	}{
		{"Calls/CA1.json", url.Values{"Status": {"completed"}}, true},
		{"Calls/CA1", url.Values{"Status": {"canceled"}, "StatusCallback": {"https://x"}}, true},
		{"Calls/CA1.json", url.Values{"Status": {"completed"}, "Url": {"https://x"}}, false},
		{"Calls/CA1.json", url.Values{"Status": {"completed"}, "TimeLimit": {"14400"}}, false},
		{"Calls/CA1.json", url.Values{"Twiml": {"<Response><Dial>+1</Dial></Response>"}}, false},
		{"Calls/CA1.json", url.Values{"Status": {"in-progress"}}, false},
		{"Messages/SM1.json", url.Values{"Body": {""}}, true},
		{"Messages/SM1.xml", url.Values{"Status": {"canceled"}}, true},
		{"Messages/SM1.json", url.Values{"Body": {"new text"}}, false},
		{"Messages/SM1.json", url.Values{"Status": {"canceled"}, "To": {"+1"}}, false},
	}
	for _, c := range cases {
		est, ve := estimate(t, v, http.MethodPost, acct+c.path, c.form)
		if ve != nil || est.Known != c.known || est.Cost != 0 || est.Reason == "" {
			t.Errorf("%s %v: %+v %v; want known=%v at $0 with a reason", c.path, c.form, est, ve, c.known)
		}
	}
}

// Default deny: every POST not priced and not on the free list is of
// unknown cost; GET, HEAD and DELETE are free; other methods unknown.
func TestDefaultDenyPOST(t *testing.T) {
	v := newVendor(t, Config{})
	for _, p := range []string{
		"IncomingPhoneNumbers/PN1.json", "Calls/CA1/Recordings.json", "Calls/CA1/Streams.json",
		"Conferences/CF1.json", "Conferences/CF1/Participants/CA1.json", "Messages/SM1/Feedback.json",
		"Applications.json", "Queues.json", "SIP/Domains.json", "Whatever",
	} {
		if est, ve := estimate(t, v, http.MethodPost, acct+p, url.Values{"X": {"1"}}); ve != nil || est.Known {
			t.Errorf("POST %s: %+v %v; want unknown cost", p, est, ve)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodDelete} {
		if est, ve := estimate(t, v, m, acct+"Messages/SM1.json", nil); ve != nil || !est.Known || est.Cost != 0 {
			t.Errorf("%s: %+v %v; want free", m, est, ve)
		}
	}
	if est, ve := estimate(t, v, http.MethodPut, acct+"Messages.json", nil); ve != nil || est.Known {
		t.Errorf("PUT: %+v %v", est, ve)
	}
}

// Finding 8: credential endpoints are refused with MintsCredential, before
// any allowlist or cost: API keys, signing keys, SIP credentials and IP
// lists, sub-accounts, and the Account resource that carries the auth
// token.
func TestCredentialEndpointsRefused(t *testing.T) {
	v := newVendor(t, Config{})
	cases := []struct{ method, path string }{
		{"POST", acct + "Keys.json"},
		{"POST", acct + "Keys"},
		{"POST", acct + "Keys/SK1.json"},
		{"POST", acct + "SigningKeys.json"},
		{"POST", acct + "SIP/CredentialLists.json"},
		{"POST", acct + "SIP/CredentialLists/CL1/Credentials.json"},
		{"POST", acct + "SIP/IpAccessControlLists.json"},
		{"POST", acct + "SIP/IpAccessControlLists/AL1/IpAddresses"},
		{"POST", acct + "SIP/Domains/SD1/CredentialListMappings.json"},
		{"POST", acct + "SIP/Domains/SD1/Auth/Calls/IpAccessControlListMappings.json"},
		{"POST", "/2010-04-01/Accounts.json"},
		{"POST", "/2010-04-01/Accounts"},
		{"POST", "/2010-04-01/Accounts.xml"},
		{"GET", "/2010-04-01/Accounts.json"},
		{"GET", "/2010-04-01/Accounts/AC1.json"},
		{"POST", "/2010-04-01/Accounts/AC1.json"},
		{"GET", "/2010-04-01/Accounts/AC1"},
	}
	for _, c := range cases {
		_, ve := estimate(t, v, c.method, c.path, url.Values{"FriendlyName": {"x"}})
		if ve == nil || ve.Status != http.StatusForbidden || ve.Outcome != vendors.OutcomeCredentialDenied || ve.Code != "keybrake_credential_endpoint" {
			t.Errorf("%s %s: %+v; want the credential refusal", c.method, c.path, ve)
		}
	}
	// Reading keys (no secret in the answer) and deleting them are free.
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if est, ve := estimate(t, v, m, acct+"Keys/SK1.json", nil); ve != nil || !est.Known {
			t.Errorf("%s Keys/SK1: %+v %v", m, est, ve)
		}
	}
}

// Finding 9: what Twilio reads but Keybrake would not count is refused.
func TestMessageCountsNothingLow(t *testing.T) {
	v := newVendor(t, Config{})
	us := "+14155550100"
	refused := []struct {
		name string
		body string
	}{
		{"two To", "To=%2B14155550100&To=%2B14155550101&Body=hi"},
		{"two Body", "To=%2B14155550100&Body=hi&Body=" + strings.Repeat("a", 1000)},
		{"two ContentSid", "To=%2B14155550100&ContentSid=HX1&ContentSid=HX2"},
		{"To in two cases", "To=%2B14155550100&to=%2B14155550101&Body=hi"},
		{"11 media", "To=%2B14155550100" + strings.Repeat("&MediaUrl=x", 11)},
	}
	for _, c := range refused {
		r, _ := formReq(http.MethodPost, messageURL, nil)
		_, err := v.Estimate(r, []byte(c.body))
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != http.StatusBadRequest {
			t.Errorf("%s: %v; want 400", c.name, err)
		}
	}
	// Parameters in the query string are not read: refused.
	r := httptest.NewRequest(http.MethodPost, messageURL+"?To=%2B14155550101", strings.NewReader("To=%2B14155550100&Body=hi"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := v.Estimate(r, []byte("To=%2B14155550100&Body=hi")); err == nil {
		t.Error("query string parameters accepted")
	}
	// A template is of unknown cost with or without a Body.
	for _, f := range []url.Values{{"To": {us}, "ContentSid": {"HX1"}}, {"To": {us}, "ContentSid": {"HX1"}, "Body": {"hi"}}} {
		if est, ve := estimate(t, v, http.MethodPost, messageURL, f); ve != nil || est.Known {
			t.Errorf("ContentSid %v: %+v %v", f, est, ve)
		}
	}
	// A body in lower case is what Twilio would send if it reads names
	// without case: it is counted.
	r, _ = formReq(http.MethodPost, messageURL, nil)
	if est, err := v.Estimate(r, []byte("to=%2B14155550100&body="+strings.Repeat("a", 200))); err != nil || est.Cost != 2*DefaultSMS {
		t.Errorf("lower-case names: %+v %v", est, err)
	}
}

// Finding 1: Twilio ignores Idempotency-Key, so it never gets a free
// replay.
func TestTwilioHonoursNoIdempotencyKey(t *testing.T) {
	var v vendors.Vendor = newVendor(t, Config{})
	if _, ok := v.(vendors.IdempotencyHonouring); ok {
		t.Fatal("twilio.Vendor implements IdempotencyHonouring; Twilio ignores Idempotency-Key")
	}
}

// Finding 10: the audited path carries the real account SID, not what the
// client put there (twilio-go puts the Basic user, which may be the vault
// key).
func TestRecordedPath(t *testing.T) {
	v := newVendor(t, Config{})
	var pr vendors.PathRecorder = v
	cases := map[string]string{
		"/2010-04-01/Accounts/" + vaultKey + "/Messages.json":  "/2010-04-01/Accounts/" + realSID + "/Messages.json",
		"/2010-04-01/Accounts/" + vaultKey + "/Calls/CA1.json": "/2010-04-01/Accounts/" + realSID + "/Calls/CA1.json",
		"/2010-04-01/Accounts/" + vaultKey + ".json":           "/2010-04-01/Accounts/" + realSID + ".json",
		"/2010-04-01/accounts/" + vaultKey + "/Messages":       "/2010-04-01/accounts/" + realSID + "/Messages",
		"/2010-04-01/Accounts/" + clientSID + "/Messages.json": "/2010-04-01/Accounts/" + realSID + "/Messages.json",
		"/2010-04-01/Calls.json":                               "/2010-04-01/Calls.json",
	}
	for in, want := range cases {
		if got := pr.RecordedPath(in); got != want {
			t.Errorf("RecordedPath(%s) = %s; want %s", in, got, want)
		}
	}
}

// TestToForwardedAndRecordedAsPriced: a To with a trailing "+" (a space
// once decoded) is priced trimmed; it is forwarded and recorded trimmed
// too, so the reconciler lists the number Twilio dialled. Other
// parameters keep their bytes.
func TestToForwardedAndRecordedAsPriced(t *testing.T) {
	v, err := New(Config{AccountSID: "AC" + strings.Repeat("0", 32), AuthToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	path := "/2010-04-01/Accounts/AC" + strings.Repeat("0", 32) + "/Messages.json"
	body := "To=%2B15551234567+&From=%2B15550000000&Body=hi+there"
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if got := v.RecordedScope(r, []byte(body)); got != "to=%2B15551234567" {
		t.Fatalf("recorded scope %q; want the trimmed To", got)
	}
	if err := trimTo(r); err != nil {
		t.Fatal(err)
	}
	fwd, _ := io.ReadAll(r.Body)
	if string(fwd) != "To=%2B15551234567&From=%2B15550000000&Body=hi+there" || r.ContentLength != int64(len(fwd)) {
		t.Fatalf("forwarded %q (length %d)", fwd, r.ContentLength)
	}
}
