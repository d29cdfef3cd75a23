package simvendor

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	twiliogo "github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"
)

// toServer sends every request, whatever its host, to one test server.
type toServer struct{ target *url.URL }

func (t toServer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = t.target.Scheme, t.target.Host, t.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

func twilioSDK(e *env, user, pass string) *twiliogo.RestClient {
	u, _ := url.Parse(e.twilio.URL)
	c := &client.Client{Credentials: client.NewCredentials(user, pass), HTTPClient: &http.Client{Transport: toServer{u}}}
	c.SetAccountSid(testTwilioSID)
	return twiliogo.NewRestClientWithParams(twiliogo.ClientParams{Client: c})
}

func TestTwilioSDKMessage(t *testing.T) {
	e := newEnv(t)
	tw := twilioSDK(e, testTwilioSID, testTwilioToken)
	p := &openapi.CreateMessageParams{}
	p.SetTo("+14155550100")
	p.SetFrom("+15005550006")
	p.SetBody(strings.Repeat("a", 161)) // two GSM-7 segments
	m, err := tw.Api.CreateMessage(p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sid == nil || !strings.HasPrefix(*m.Sid, "SM") || *m.NumSegments != "2" || m.Price != nil {
		t.Fatalf("message %+v", m)
	}
	wantMoved(t, e.sim, VendorTwilio, 2*DefaultSMSPrice)
	e.clock.Advance(time.Minute)
	got, err := tw.Api.FetchMessage(*m.Sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Price == nil || *got.Price != "-0.01660" || *got.Status != "sent" {
		t.Fatalf("fetched %+v", got)
	}

	_, err = twilioSDK(e, testTwilioSID, "wrongtoken").Api.CreateMessage(p)
	var te *client.TwilioRestError
	if !errors.As(err, &te) || te.Status != 401 || te.Code != 20003 || te.Message != "Authenticate" ||
		te.MoreInfo != "https://www.twilio.com/docs/errors/20003" {
		t.Fatalf("wrong token: %v", err)
	}
	wantMoved(t, e.sim, VendorTwilio, 2*DefaultSMSPrice)
}

func TestSMSSegments(t *testing.T) {
	for _, c := range []struct {
		name string
		body string
		segs int
		ucs2 bool
	}{
		{"empty", "", 1, false},
		{"160 GSM", strings.Repeat("a", 160), 1, false},
		{"161 GSM", strings.Repeat("a", 161), 2, false},
		{"306 GSM", strings.Repeat("a", 306), 2, false},
		{"307 GSM", strings.Repeat("a", 307), 3, false},
		{"80 braces count double", strings.Repeat("{", 80), 1, false},
		{"81 braces", strings.Repeat("{", 81), 2, false},
		{"escape not split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 10), 2, false},
		{"euro and pound are GSM", "£10 or €12", 1, false},
		{"70 UCS-2", strings.Repeat("é", 0) + strings.Repeat("ж", 70), 1, true},
		{"71 UCS-2", strings.Repeat("ж", 71), 2, true},
		{"one emoji makes 152 GSM chars three segments", strings.Repeat("a", 152) + "😀", 3, true},
		{"35 emoji fit one segment", strings.Repeat("😀", 35), 1, true},
		{"surrogate pairs not split", strings.Repeat("😀", 36), 2, true},
		{"a pair is never split", strings.Repeat("ж", 66) + "😀" + strings.Repeat("ж", 66), 3, true},
		{"ZWJ family is one grapheme", strings.Repeat("ж", 60) + "👨‍👩‍👧" + strings.Repeat("ж", 5), 2, true},
		{"backtick is not GSM-7", "`", 1, true},
		{"ç is not GSM-7 but Ç is", "Ç", 1, false},
	} {
		segs, ucs2 := SMSSegments(c.body)
		if segs != c.segs || ucs2 != c.ucs2 {
			t.Errorf("%s: SMSSegments = %d, %v; want %d, %v", c.name, segs, ucs2, c.segs, c.ucs2)
		}
	}
	if _, ucs2 := SMSSegments("ç"); !ucs2 {
		t.Error("ç must be UCS-2")
	}
}

func TestTwilioExtensionsAndMMS(t *testing.T) {
	e := newEnv(t)
	base := "/2010-04-01/Accounts/" + testTwilioSID + "/Messages"
	f := form("To", "+14155550100", "From", "+15005550006", "Body", "hi", "Idempotency-Key", "x")
	j := e.twilioReq(t, http.MethodPost, base+".json", f, testTwilioSID, testTwilioToken)
	wantStatus(t, j, 201)
	x := e.twilioReq(t, http.MethodPost, base+".xml", f, testTwilioSID, testTwilioToken)
	wantStatus(t, x, 201)
	n := e.twilioReq(t, http.MethodPost, base, f, testTwilioSID, testTwilioToken)
	wantStatus(t, n, 201)
	for _, r := range []resp{x, n} {
		if !strings.Contains(r.raw, "<TwilioResponse><Message>") || !strings.Contains(r.raw, "<NumSegments>1</NumSegments>") {
			t.Fatalf("xml: %s", r.raw)
		}
	}
	// Twilio ignores Idempotency-Key: three sends, three messages.
	req, _ := http.NewRequest(http.MethodPost, e.twilio.URL+base+".json", strings.NewReader(f.Encode()))
	req.SetBasicAuth(testTwilioSID, testTwilioToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Idempotency-Key", "same")
	wantStatus(t, do(t, req), 201)
	wantMoved(t, e.sim, VendorTwilio, 4*DefaultSMSPrice)

	mms := form("To", "+14155550100", "From", "+15005550006", "MediaUrl", "https://x/1.png", "MediaUrl", "https://x/2.png")
	r := e.twilioReq(t, http.MethodPost, base+".json", mms, testTwilioSID, testTwilioToken)
	wantStatus(t, r, 201)
	if !strings.HasPrefix(r.str("sid"), "MM") || r.str("num_media") != "2" {
		t.Fatalf("mms: %s", r.raw)
	}
	wantMoved(t, e.sim, VendorTwilio, 4*DefaultSMSPrice+DefaultMMSPrice)
	eleven := url.Values{"To": {"+1"}, "From": {"+1"}}
	for i := 0; i < 11; i++ {
		eleven.Add("MediaUrl", "https://x/a.png")
	}
	wantStatus(t, e.twilioReq(t, http.MethodPost, base+".json", eleven, testTwilioSID, testTwilioToken), 400)

	// A repeated Body is priced by its costliest value.
	rep := form("To", "+1", "From", "+1", "Body", "short", "Body", strings.Repeat("b", 400))
	r = e.twilioReq(t, http.MethodPost, base+".json", rep, testTwilioSID, testTwilioToken)
	if r.str("num_segments") != "3" {
		t.Fatalf("repeated body: %s", r.raw)
	}
	wantStatus(t, e.twilioReq(t, http.MethodPost, base+".json", form("To", "+1", "From", "+1", "Body", strings.Repeat("c", 1601)), testTwilioSID, testTwilioToken), 400)
	wantStatus(t, e.twilioReq(t, http.MethodPost, base+".json", form("From", "+1", "Body", "x"), testTwilioSID, testTwilioToken), 400)
	// Another account's path is not found.
	wantStatus(t, e.twilioReq(t, http.MethodPost, "/2010-04-01/Accounts/AC999/Messages.json", f, testTwilioSID, testTwilioToken), 404)
}

func TestTwilioContentTemplate(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.TwilioContentTemplates = map[string]string{"HX1": "Hello {{1}}, your code is {{2}}."}
	})
	base := "/2010-04-01/Accounts/" + testTwilioSID + "/Messages.json"
	r := e.twilioReq(t, http.MethodPost, base, form("To", "+1", "From", "+1", "ContentSid", "HX1",
		"ContentVariables", `{"1":"`+strings.Repeat("n", 200)+`","2":"42"}`), testTwilioSID, testTwilioToken)
	wantStatus(t, r, 201)
	if r.str("num_segments") != "2" {
		t.Fatalf("template: %s", r.raw)
	}
	wantMoved(t, e.sim, VendorTwilio, 2*DefaultSMSPrice)
	wantStatus(t, e.twilioReq(t, http.MethodPost, base, form("To", "+1", "From", "+1", "ContentSid", "HX2"), testTwilioSID, testTwilioToken), 400)
}

func TestTwilioCalls(t *testing.T) {
	e := newEnv(t)
	base := "/2010-04-01/Accounts/" + testTwilioSID + "/Calls"
	call := form("To", "+14155550100", "From", "+15005550006", "Url", "https://example.com/twiml")
	r := e.twilioReq(t, http.MethodPost, base+".json", call, testTwilioSID, testTwilioToken)
	wantStatus(t, r, 201)
	wantMoved(t, e.sim, VendorTwilio, 240*DefaultVoicePerMinute) // no TimeLimit: four hours
	limited := form("To", "+1", "From", "+1", "Url", "https://x", "TimeLimit", "61")
	short := e.twilioReq(t, http.MethodPost, base, limited, testTwilioSID, testTwilioToken)
	wantStatus(t, short, 201)
	wantMoved(t, e.sim, VendorTwilio, 242*DefaultVoicePerMinute) // 61 s is two started minutes
	// A TimeLimit above the account's limit is held to it.
	huge := form("To", "+1", "From", "+1", "Url", "https://x", "TimeLimit", "86400")
	wantStatus(t, e.twilioReq(t, http.MethodPost, base+".json", huge, testTwilioSID, testTwilioToken), 201)
	wantMoved(t, e.sim, VendorTwilio, 482*DefaultVoicePerMinute)

	sid := r.str("sid")
	up := e.twilioReq(t, http.MethodPost, base+"/"+sid+".json", form("TimeLimit", "14400"), testTwilioSID, testTwilioToken)
	wantStatus(t, up, 200)
	wantMoved(t, e.sim, VendorTwilio, 482*DefaultVoicePerMinute)
	end := e.twilioReq(t, http.MethodPost, base+"/"+sid+".json", form("Status", "completed"), testTwilioSID, testTwilioToken)
	wantStatus(t, end, 200)
	if end.str("status") != "completed" {
		t.Fatalf("end: %s", end.raw)
	}
	again := e.twilioReq(t, http.MethodPost, base+"/"+sid+".json", form("Status", "completed"), testTwilioSID, testTwilioToken)
	wantStatus(t, again, 400)
	if again.num("code") != 21220 {
		t.Fatalf("ended call: %s", again.raw)
	}
	// Raising a live call's limit moves the added minutes.
	e2 := newEnv(t, func(c *Config) { c.TwilioCallLimitSeconds = 86400 })
	r = e2.twilioReq(t, http.MethodPost, base+".json", form("To", "+1", "From", "+1", "Url", "https://x", "TimeLimit", "60"), testTwilioSID, testTwilioToken)
	wantMoved(t, e2.sim, VendorTwilio, DefaultVoicePerMinute)
	wantStatus(t, e2.twilioReq(t, http.MethodPost, base+"/"+r.str("sid")+".json", form("TimeLimit", "600"), testTwilioSID, testTwilioToken), 200)
	wantMoved(t, e2.sim, VendorTwilio, 10*DefaultVoicePerMinute)
	e2.clock.Advance(10 * time.Minute)
	wantStatus(t, e2.twilioReq(t, http.MethodPost, base+"/"+r.str("sid")+".json", form("TimeLimit", "6000"), testTwilioSID, testTwilioToken), 400)
	wantMoved(t, e2.sim, VendorTwilio, 10*DefaultVoicePerMinute)
	wantStatus(t, e2.twilioReq(t, http.MethodPost, base+".json", form("To", "+1", "From", "+1"), testTwilioSID, testTwilioToken), 400)
}

func TestTwilioCredentialMinting(t *testing.T) {
	e := newEnv(t)
	tw := twilioSDK(e, testTwilioSID, testTwilioToken)
	p := &openapi.CreateNewKeyParams{}
	p.SetFriendlyName("agent")
	k, err := tw.Api.CreateNewKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if k.Sid == nil || !strings.HasPrefix(*k.Sid, "SK") || k.Secret == nil || *k.Secret == "" {
		t.Fatalf("key %+v", k)
	}
	// The minted key works: it is a way around whatever issued the request.
	mp := &openapi.CreateMessageParams{}
	mp.SetTo("+1")
	mp.SetFrom("+1")
	mp.SetBody("via minted key")
	if _, err := twilioSDK(e, *k.Sid, *k.Secret).Api.CreateMessage(mp); err != nil {
		t.Fatal(err)
	}
	sk := e.twilioReq(t, http.MethodPost, "/2010-04-01/Accounts/"+testTwilioSID+"/SigningKeys.json", nil, testTwilioSID, testTwilioToken)
	wantStatus(t, sk, 201)
	sub := e.twilioReq(t, http.MethodPost, "/2010-04-01/Accounts.json", form("FriendlyName", "side"), testTwilioSID, testTwilioToken)
	wantStatus(t, sub, 201)
	if !strings.HasPrefix(sub.str("sid"), "AC") || sub.str("auth_token") == "" || sub.str("owner_account_sid") != testTwilioSID {
		t.Fatalf("subaccount: %s", sub.raw)
	}
	m := e.twilioReq(t, http.MethodPost, "/2010-04-01/Accounts/"+sub.str("sid")+"/Messages.json",
		form("To", "+1", "From", "+1", "Body", "x"), sub.str("sid"), sub.str("auth_token"))
	wantStatus(t, m, 201)
	minted := 0
	for _, ev := range e.sim.Events() {
		if ev.Kind == KindCredentialMinted {
			minted++
			if ev.Secret == "" {
				t.Fatalf("minted without secret: %+v", ev)
			}
		}
	}
	if minted != 3 {
		t.Fatalf("minted %d credentials", minted)
	}
	wantMoved(t, e.sim, VendorTwilio, 2*DefaultSMSPrice)
}
