package twilio

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

const (
	vaultKey   = "kbAbCdEfGhIjKlMnOpQrStUvWxYz0123456789ABCDEFG"
	realSID    = "AC00000000000000000000000000000001"
	realToken  = "realtoken0123456789"
	clientSID  = "ACkeybrake"
	messageURL = "/2010-04-01/Accounts/" + clientSID + "/Messages.json"
)

func newVendor(t *testing.T, cfg Config) *Vendor {
	t.Helper()
	if cfg.AccountSID == "" {
		cfg.AccountSID = realSID
	}
	if cfg.AuthToken == "" {
		cfg.AuthToken = realToken
	}
	if cfg.TwiMLURLs == nil {
		// The TwiML hosts the tests' calls fetch from.
		cfg.TwiMLURLs = []string{"https://x/", "https://example.com/"}
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestNewValidates(t *testing.T) {
	bad := []Config{
		{AccountSID: "AC-1", AuthToken: "t"},
		{AccountSID: realSID, AuthToken: "t", APIKey: "SK:1"},
		{AccountSID: realSID, AuthToken: "t", CallMaxUSD: -1},
		{AccountSID: realSID, AuthToken: "t", Rates: RateTable{"44": {SMS: 1}}},
		{AccountSID: realSID, AuthToken: "t", Rates: RateTable{"+4a": {SMS: 1}}},
		{AccountSID: realSID, AuthToken: "t", Rates: RateTable{"+44": {SMS: -1}}},
		{AccountSID: realSID, AuthToken: "t", DefaultRate: &Rate{Unknown: true}},
		{AccountSID: realSID, AuthToken: "t", DefaultVoiceRate: -1},
		{AccountSID: realSID, AuthToken: "t", VoiceRates: VoiceRateTable{"+44": {}}},
		{AccountSID: realSID, AuthToken: "t", VoiceRates: VoiceRateTable{"+44": {PerMinute: 5, Unknown: true}}},
		{AccountSID: realSID, AuthToken: "t", VoiceRates: VoiceRateTable{"44": {PerMinute: 5}}},
	}
	for i, cfg := range bad {
		if _, err := New(cfg); err == nil {
			t.Errorf("config %d accepted: %+v", i, cfg)
		}
	}
	// Without its secrets the vendor is built (they may come later from
	// the environment) but forwards nothing.
	for _, cfg := range []Config{{AuthToken: "t"}, {AccountSID: realSID}} {
		v, err := New(cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		r := httptest.NewRequest("POST", "/2010-04-01/Accounts/"+realSID+"/Messages.json", nil)
		r.SetBasicAuth(realSID, "kbAbCdEfGhIjKlMnOpQrStUvWxYz0123")
		var ve *vendors.Error
		if err := v.Authorize(r); !errors.As(err, &ve) || ve.Code != vendors.CodeNotConfigured {
			t.Errorf("%+v: Authorize = %v; want a not-configured refusal", cfg, err)
		}
	}
}

func TestSegments(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	zh := func(n int) string { return strings.Repeat("ж", n) }
	cases := []struct {
		name string
		body string
		segs int
		enc  string
	}{
		{"empty", "", 1, EncodingGSM7},
		{"GSM 160", a(160), 1, EncodingGSM7},
		{"GSM 161", a(161), 2, EncodingGSM7},
		{"GSM 306", a(306), 2, EncodingGSM7},
		{"GSM 307", a(307), 3, EncodingGSM7},
		{"GSM accents and symbols", "Ça coûte 5€? Ünïcödé", 1, EncodingUCS2}, // û, ï, ó are not GSM-7
		{"GSM basic accents", strings.Repeat("é", 160), 1, EncodingGSM7},
		{"extended counts 2: 80 braces", strings.Repeat("{", 80), 1, EncodingGSM7},
		{"extended counts 2: 81 braces", strings.Repeat("{", 81), 2, EncodingGSM7},
		{"extended 159+1", a(159) + "€", 2, EncodingGSM7},
		{"extended chars", `{}[]~\|^€`, 1, EncodingGSM7},
		// 152 + € (2) + 152: the escape pair never straddles segments, so
		// 306 septets need 3 segments, not 2.
		{"escape not split", a(152) + "€" + a(152), 3, EncodingGSM7},
		{"UCS-2 70", zh(70), 1, EncodingUCS2},
		{"UCS-2 71", zh(71), 2, EncodingUCS2},
		{"UCS-2 134", zh(134), 2, EncodingUCS2},
		{"UCS-2 135", zh(135), 3, EncodingUCS2},
		{"one non-GSM char makes it UCS-2", a(69) + "ж", 1, EncodingUCS2},
		{"one non-GSM char makes it UCS-2, 71", a(70) + "ж", 2, EncodingUCS2},
		{"emoji are 2 code units: 35", strings.Repeat("😀", 35), 1, EncodingUCS2},
		{"emoji are 2 code units: 36", strings.Repeat("😀", 36), 2, EncodingUCS2},
		{"surrogate pair not split", zh(66) + "😀" + zh(66), 3, EncodingUCS2},
		// A character (grapheme) is never split: e + U+0301 is one
		// character of two code units, and makes the body UCS-2.
		{"combining mark not split", a(66) + "e\u0301" + a(66), 3, EncodingUCS2},
		{"CR LF is two GSM-7 characters", a(80) + "\r\n" + a(80), 2, EncodingGSM7},
		{"a skin tone after a letter is a character of its own", a(68) + "\U0001F3FB" + a(66), 3, EncodingUCS2},
		{"ZWJ sequence the calculator splits in two", strings.Repeat("❤️\u200d🔥", 14), 1, EncodingUCS2},
		{"flags are two code points, four units", strings.Repeat("🇺🇸", 18), 2, EncodingUCS2},
		// The calculator's packing of a character longer than a segment:
		// an empty first segment, then the character; or the second
		// segment holding more than 67 units.
		{"a character longer than a segment", "e" + strings.Repeat("\u0301", 80), 2, EncodingUCS2},
		{"a character longer than a segment, then one more", "e" + strings.Repeat("\u0301", 80) + "x", 3, EncodingUCS2},
		{"an overfull second segment", a(70) + "e" + strings.Repeat("\u0301", 65), 2, EncodingUCS2},
	}
	for _, c := range cases {
		segs, enc := Segments(c.body)
		if segs != c.segs || enc != c.enc {
			t.Errorf("%s: Segments = %d %s; want %d %s", c.name, segs, enc, c.segs, c.enc)
		}
	}
}

// zalgo is e under n combining acute accents: one character of n+1 code
// units.
func zalgo(n int) string { return "e" + strings.Repeat("\u0301", n) }

func formReq(method, path string, form url.Values) (*http.Request, []byte) {
	body := []byte(form.Encode())
	r := httptest.NewRequest(method, path, strings.NewReader(string(body)))
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return r, body
}

func TestEstimate(t *testing.T) {
	v := newVendor(t, Config{Rates: RateTable{
		"+44":  {SMS: 40_000, MMS: 0},
		"+447": {SMS: 50_000, MMS: 300_000},
	}})
	withDefault := newVendor(t, Config{DefaultRate: &Rate{SMS: 100_000, MMS: 500_000}, CallMaxUSD: 2_500_000})
	us := "+14155550100"
	a := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name  string
		v     *Vendor
		form  url.Values
		path  string
		want  money.Micros
		known bool
	}{
		{"US SMS 1 segment", v, url.Values{"To": {us}, "Body": {a(160)}}, "", 8_300, true},
		{"US SMS 161 chars", v, url.Values{"To": {us}, "Body": {a(161)}}, "", 16_600, true},
		{"US SMS 70 UCS-2", v, url.Values{"To": {us}, "Body": {strings.Repeat("ж", 70)}}, "", 8_300, true},
		{"US SMS 71 UCS-2", v, url.Values{"To": {us}, "Body": {strings.Repeat("ж", 71)}}, "", 16_600, true},
		// 500 characters + 2 × 48 for the converter's links: 4 SMS
		// segments, dearer than one MMS.
		{"US MMS, long body: as converted SMS", v, url.Values{"To": {us}, "Body": {a(500)}, "MediaUrl": {"https://x/1.png", "https://x/2.png"}}, "", 4 * 8_300, true},
		{"US MMS, short body: one MMS", v, url.Values{"To": {us}, "Body": {"hi"}, "MediaUrl": {"https://x/1.png", "https://x/2.png"}}, "", 22_000, true},
		{"US MMS, 10 media: one MMS", v, url.Values{"To": {us}, "MediaUrl": {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}}, "", 4 * 8_300, true},
		{"SendAsMms", v, url.Values{"To": {us}, "Body": {"hi"}, "SendAsMms": {"true"}}, "", 22_000, true},
		{"Canada is +1", v, url.Values{"To": {"+16045550100"}, "Body": {"hi"}}, "", 8_300, true},
		{"longest prefix +447", v, url.Values{"To": {"+447700900123"}, "Body": {a(200)}}, "", 100_000, true},
		{"shorter prefix +44", v, url.Values{"To": {"+442079460000"}, "Body": {"hi"}}, "", 40_000, true},
		{"MMS with no MMS rate", v, url.Values{"To": {"+442079460000"}, "MediaUrl": {"https://x"}}, "", 0, false},
		{"MMS +447", v, url.Values{"To": {"+447700900123"}, "MediaUrl": {"https://x"}}, "", 300_000, true},
		{"Jamaica carved out of +1", v, url.Values{"To": {"+18765550100"}, "Body": {"hi"}}, "", 0, false},
		{"Puerto Rico carved out of +1", v, url.Values{"To": {"+17875550100"}, "Body": {"hi"}}, "", 0, false},
		{"unknown country", v, url.Values{"To": {"+33612345678"}, "Body": {"hi"}}, "", 0, false},
		{"unknown country, default rate", withDefault, url.Values{"To": {"+33612345678"}, "Body": {a(161)}}, "", 200_000, true},
		{"carved-out prefix, default rate", withDefault, url.Values{"To": {"+18765550100"}, "MediaUrl": {"x"}}, "", 500_000, true},
		{"whatsapp", v, url.Values{"To": {"whatsapp:+14155550100"}, "Body": {"hi"}}, "", 0, false},
		{"no To", v, url.Values{"Body": {"hi"}}, "", 0, false},
		{"content template", v, url.Values{"To": {us}, "ContentSid": {"HX123"}}, "", 0, false},
		{"empty body is one segment", v, url.Values{"To": {us}, "From": {"+15005550006"}}, "", 8_300, true},
		{"call, Twilio's default 4 h", v, url.Values{"To": {us}, "Url": {"https://x"}}, "/2010-04-01/Accounts/AC1/Calls.json", 240 * DefaultVoicePerMinute, true},
		{"call, call_max buys 178 minutes", withDefault, url.Values{"To": {us}}, "/2010-04-01/Accounts/AC1/Calls.json", 178 * DefaultVoicePerMinute, true},
		{"conference participant dials out", v, url.Values{"To": {us}, "TimeLimit": {"600"}}, "/2010-04-01/Accounts/AC1/Conferences/CF1/Participants.json", 10 * DefaultVoicePerMinute, true},
		{"buying a number", v, url.Values{"PhoneNumber": {us}}, "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/Local.json", 0, false},
		{"updating a number is not on the free list", v, url.Values{"VoiceUrl": {"https://x"}}, "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1.json", 0, false},
		// 10 × a, then two characters of 60 code units: Twilio's calculator
		// says 2 segments for 130 code units, a second segment it cannot
		// send; a character longer than a segment likewise.
		{"a segment overfilled", v, url.Values{"To": {us}, "Body": {a(10) + zalgo(59) + zalgo(59)}}, "", 0, false},
		{"a character longer than a segment", v, url.Values{"To": {us}, "Body": {zalgo(80)}}, "", 0, false},
		{"characters of 30 code units fit", v, url.Values{"To": {us}, "Body": {a(10) + zalgo(29) + zalgo(29) + zalgo(29)}}, "", 2 * 8_300, true},
		{"redacting a message is free", v, url.Values{"Body": {""}}, "/2010-04-01/Accounts/AC1/Messages/SM1.json", 0, true},
	}
	for _, c := range cases {
		path := c.path
		if path == "" {
			path = messageURL
		}
		r, body := formReq(http.MethodPost, path, c.form)
		est, err := c.v.Estimate(r, body)
		if err != nil {
			t.Errorf("%s: err %v", c.name, err)
			continue
		}
		if est.Known != c.known || (c.known && est.Cost != c.want) {
			t.Errorf("%s: estimate %+v; want %v known=%v", c.name, est, c.want, c.known)
		}
		if !est.Known && est.Reason == "" {
			t.Errorf("%s: no reason for an unknown cost", c.name)
		}
		if strings.Contains(est.Reason, "5550100") {
			t.Errorf("%s: reason echoes the phone number: %q", c.name, est.Reason)
		}
	}
	// GET costs nothing.
	r := httptest.NewRequest(http.MethodGet, "/2010-04-01/Accounts/AC1/Messages.json?PageSize=20", nil)
	if est, err := v.Estimate(r, nil); err != nil || !est.Known || est.Cost != 0 {
		t.Errorf("GET: %+v %v", est, err)
	}
	// Refusals of malformed requests.
	var ve *vendors.Error
	r = httptest.NewRequest(http.MethodGet, "/2010-04-01/Calls.json", nil)
	if _, err := v.Estimate(r, nil); !errors.As(err, &ve) || ve.Status != http.StatusNotFound {
		t.Errorf("account-less path: %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, messageURL, strings.NewReader(`{"To":"+1"}`))
	r.Header.Set("Content-Type", "application/json")
	if _, err := v.Estimate(r, []byte(`{"To":"+1"}`)); !errors.As(err, &ve) || ve.Status != http.StatusBadRequest {
		t.Errorf("JSON message: %v", err)
	}
	r, _ = formReq(http.MethodPost, messageURL, nil)
	if _, err := v.Estimate(r, []byte("To=%zz")); !errors.As(err, &ve) || ve.Status != http.StatusBadRequest {
		t.Errorf("bad form: %v", err)
	}
}

func TestCredential(t *testing.T) {
	v := newVendor(t, Config{})
	cases := []struct {
		auth string
		ok   bool
	}{
		{basic(clientSID, vaultKey), true},
		{basic("any-user name", vaultKey), true},
		{basic("", vaultKey), true},
		{basic(vaultKey, ""), false},
		{basic(clientSID, "short"), false},
		{basic(clientSID, vaultKey+"!"), false},
		{"Bearer " + vaultKey, false},
		{"Basic !!!", false},
		{"", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, messageURL, nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		key, ok := v.Credential(r)
		if ok != c.ok || (ok && key != vaultKey) {
			t.Errorf("Credential(%q) = %q, %v; want ok %v", c.auth, key, ok, c.ok)
		}
	}
}

func assertNoTrace(t *testing.T, r *http.Request, key string) {
	t.Helper()
	for name, vals := range r.Header {
		for _, v := range vals {
			if strings.Contains(v, key) {
				t.Errorf("header %s carries the vault key", name)
			}
			if strings.HasPrefix(v, "Basic ") {
				raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(v, "Basic "))
				if strings.Contains(string(raw), key) {
					t.Errorf("header %s carries the vault key in Basic", name)
				}
			}
		}
	}
	for _, s := range []string{r.URL.String(), r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.RequestURI, r.Host} {
		if strings.Contains(s, key) {
			t.Errorf("URL carries the vault key: %q", s)
		}
	}
}

func TestAuthorize(t *testing.T) {
	v := newVendor(t, Config{})
	cases := []struct {
		name, path, wantPath, user string
	}{
		{"messages", messageURL, "/2010-04-01/Accounts/" + realSID + "/Messages.json", clientSID},
		{"vault key as username and path SID", "/2010-04-01/Accounts/" + vaultKey + "/Messages/SM1.json", "/2010-04-01/Accounts/" + realSID + "/Messages/SM1.json", vaultKey},
		{"account fetch", "/2010-04-01/Accounts/ACwhatever.json", "/2010-04-01/Accounts/" + realSID + ".json", "x"},
		{"encoded path", "/2010-04-01/Accounts/ACx/Messages.json?To=%2B1", "/2010-04-01/Accounts/" + realSID + "/Messages.json", "x"},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader("To=%2B14155550100&Body=hi"))
		r.Header.Set("Authorization", basic(c.user, vaultKey))
		if err := v.Authorize(r); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.URL.Path != c.wantPath {
			t.Errorf("%s: path %q; want %q", c.name, r.URL.Path, c.wantPath)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != realSID || p != realToken {
			t.Errorf("%s: upstream basic %q:%q", c.name, u, p)
		}
		if !strings.HasPrefix(r.RequestURI, c.wantPath) {
			t.Errorf("%s: RequestURI %q", c.name, r.RequestURI)
		}
		assertNoTrace(t, r, vaultKey)
	}
	// RawPath (a path with escapes) is rewritten too.
	r := httptest.NewRequest(http.MethodGet, "/2010-04-01/Accounts/ACx/Messages/SM%41.json", nil)
	r.URL.RawPath = "/2010-04-01/Accounts/ACx/Messages/SM%41.json"
	r.Header.Set("Authorization", basic("x", vaultKey))
	if err := v.Authorize(r); err != nil {
		t.Fatal(err)
	}
	if r.URL.RawPath != "/2010-04-01/Accounts/"+realSID+"/Messages/SM%41.json" || r.URL.Path != "/2010-04-01/Accounts/"+realSID+"/Messages/SMA.json" {
		t.Errorf("raw path %q, path %q", r.URL.RawPath, r.URL.Path)
	}
	// An API key goes as the Basic user; the path keeps the account SID.
	vk := newVendor(t, Config{APIKey: "SK123"})
	r = httptest.NewRequest(http.MethodGet, messageURL, nil)
	r.Header.Set("Authorization", basic("x", vaultKey))
	if err := vk.Authorize(r); err != nil {
		t.Fatal(err)
	}
	if u, p, _ := r.BasicAuth(); u != "SK123" || p != realToken || !strings.Contains(r.URL.Path, realSID) {
		t.Errorf("api key: %q:%q %s", u, p, r.URL.Path)
	}
	// Paths without an account segment are refused.
	for _, p := range []string{"/2010-04-01/Accounts.json", "/2010-04-01/Accounts/", "/v1/Services", "/2010-04-01/Calls.json"} {
		r := httptest.NewRequest(http.MethodGet, p, nil)
		r.Header.Set("Authorization", basic("x", vaultKey))
		var ve *vendors.Error
		if err := v.Authorize(r); !errors.As(err, &ve) || ve.Status != http.StatusNotFound {
			t.Errorf("%s: err = %v", p, err)
		}
	}
}

func TestSettle(t *testing.T) {
	v := newVendor(t, Config{})
	msg, _ := formReq(http.MethodPost, "/2010-04-01/Accounts/"+realSID+"/Messages.json", nil)
	call, _ := formReq(http.MethodPost, "/2010-04-01/Accounts/"+realSID+"/Calls.json", nil)
	get := httptest.NewRequest(http.MethodGet, "/2010-04-01/Accounts/"+realSID+"/Messages/SM1.json", nil)
	est := vendors.Estimate{Cost: 16_600, Known: true}
	cases := []struct {
		name   string
		r      *http.Request
		status int
		body   string
		want   vendors.Result
	}{
		{"queued, price null", msg, 201, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","price":null,"price_unit":"USD"}`,
			vendors.Result{Decision: vendors.DecisionUnpriced, TxnID: "SM0123456789abcdef0123456789abcdef"}},
		{"priced at creation", msg, 201, `{"sid":"SM1","status":"sent","price":"-0.00830","price_unit":"USD"}`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 8_300, TxnID: "SM1"}},
		{"priced, more decimals", msg, 201, `{"sid":"MM1","price":"-0.0220000","price_unit":"usd"}`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 22_000, TxnID: "MM1"}},
		{"priced as a number", msg, 201, `{"sid":"SM2","price":-0.0166,"price_unit":"USD"}`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 16_600, TxnID: "SM2"}},
		{"priced in EUR", msg, 201, `{"sid":"SM3","price":"-0.07","price_unit":"EUR"}`,
			vendors.Result{Decision: vendors.DecisionUnpriced, TxnID: "SM3"}},
		{"unreadable body", msg, 201, `<xml/>`, vendors.Result{Decision: vendors.DecisionUnpriced}},
		{"call queued", call, 201, `{"sid":"CA1","status":"queued","price":null}`,
			vendors.Result{Decision: vendors.DecisionUnpriced, TxnID: "CA1"}},
		{"400 releases", msg, 400, `{"code":21211,"message":"Invalid 'To' Phone Number","status":400}`,
			vendors.Result{Decision: vendors.DecisionRelease}},
		{"429 from Twilio releases", msg, 429, `{"code":20429}`, vendors.Result{Decision: vendors.DecisionRelease}},
		{"500 unknown", msg, 500, ``, vendors.Result{Decision: vendors.DecisionUnknown}},
		{"GET settles at 0, no txn", get, 200, `{"sid":"SM1","price":"-0.0083"}`,
			vendors.Result{Decision: vendors.DecisionSettle, Cost: 0}},
	}
	for _, c := range cases {
		e := est
		if c.r == get {
			e = vendors.Estimate{Known: true}
		}
		got := v.Settle(c.r, c.status, http.Header{}, []byte(c.body), e)
		if got != c.want {
			t.Errorf("%s: Settle = %+v; want %+v", c.name, got, c.want)
		}
	}
}

func TestWriteError(t *testing.T) {
	v := newVendor(t, Config{})
	w := httptest.NewRecorder()
	v.WriteError(w, &vendors.Error{Status: 401, Code: "keybrake_invalid_key", Message: "Invalid vault key."})
	want := `{"code":20003,"message":"Invalid vault key.","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`
	if w.Code != 401 || strings.TrimSpace(w.Body.String()) != want || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("got %d %s %q", w.Code, w.Body.String(), w.Header().Get("Content-Type"))
	}
}
