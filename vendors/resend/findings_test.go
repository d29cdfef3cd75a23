package resend

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	resendgo "github.com/resend/resend-go/v3"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Finding 9: every address Resend would send to is counted; what cannot be
// counted with certainty is refused with 400 in Resend's format.
func TestRecipientsCountedAsResendSends(t *testing.T) {
	v := newVendor(t, Config{})
	counted := []struct {
		name string
		path string
		body string
		n    int64
	}{
		{"comma-separated to", "/emails", `{"to":"a@x,b@y, c@z"}`, 3},
		{"comma-separated inside an array", "/emails", `{"to":["a@x, b@y"],"cc":"c@x,d@x","bcc":["e@x"]}`, 5},
		{"display names", "/emails", `{"to":"Ann <a@x>, Bob <b@y>"}`, 2},
		{"trailing comma", "/emails", `{"to":"a@x,"}`, 1},
		{"null cc", "/emails", `{"to":"a@x","cc":null}`, 1},
		{"batch: every email, every field", "/emails/batch", `[{"to":"a@x,b@x"},{"to":["c@x"],"cc":"d@x,e@x","bcc":["f@x","g@x"]},{"to":"h@x"}]`, 8},
		{"path with trailing slash is the send", "/emails/", `{"to":"a@x,b@y"}`, 2},
		{"path in another case is the send", "/Emails/Batch", `[{"to":"a@x,b@y"}]`, 2},
	}
	for _, c := range counted {
		r, body := jsonReq("POST", c.path, c.body)
		est, err := v.Estimate(r, body)
		if err != nil || !est.Known || est.Cost != money.Micros(c.n)*DefaultPerEmailUSD {
			t.Errorf("%s: %+v %v; want %d recipients", c.name, est, err, c.n)
		}
	}
	refused := []struct {
		name string
		path string
		body string
		want string
	}{
		{"quoted display name with a comma", "/emails", `{"to":"\"Doe, Jane\" <j@x>"}`, "quotes"},
		{"unquoted name with a comma", "/emails", `{"to":"Doe, Jane <j@x>"}`, "how many addresses"},
		{"two @ in one part", "/emails", `{"to":"a@x b@y"}`, "how many addresses"},
		{"semicolons", "/emails", `{"to":"a@x;b@y"}`, "semicolons"},
		{"to given twice", "/emails", `{"to":"a@x","to":["b@x","c@x","d@x"]}`, "given twice"},
		{"To in another case", "/emails", `{"To":["a@x","b@x"]}`, "lower case"},
		{"number as a recipient", "/emails", `{"to":[1]}`, "must be a string"},
		{"object as to", "/emails", `{"to":{"a":"b"}}`, "string or an array"},
		{"empty body", "/emails", ``, "cannot be parsed"},
		{"trailing data", "/emails", `{"to":"a@x"}{"to":"b@x"}`, "after its JSON value"},
		{"batch not an array", "/emails/batch", `{"to":"a@x"}`, "JSON array"},
		{"batch element not an object", "/emails/batch", `[{"to":"a@x"},"b@x"]`, "email 1"},
		{"duplicate key in a batch email", "/emails/batch", `[{"to":"a@x","to":"b@x"}]`, "given twice"},
	}
	for _, c := range refused {
		r, body := jsonReq("POST", c.path, c.body)
		_, err := v.Estimate(r, body)
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != http.StatusBadRequest || !strings.Contains(ve.Message, c.want) {
			t.Errorf("%s: %v; want a 400 saying %q", c.name, err, c.want)
		}
	}
}

// Finding 9: Resend reads JSON; the same body sent as a form (or with no
// Content-Type) is refused with Resend's validation_error.
func TestSendNotJSONRefused(t *testing.T) {
	v := newVendor(t, Config{})
	body := `{"to":"a@x,b@y,c@z"}`
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", ""} {
		r := httptest.NewRequest("POST", "/emails", strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		_, err := v.Estimate(r, []byte(body))
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != 400 {
			t.Fatalf("Content-Type %q: %v", ct, err)
		}
		w := httptest.NewRecorder()
		v.WriteError(w, ve)
		if !strings.Contains(w.Body.String(), `"name":"validation_error"`) || w.Code != 400 {
			t.Errorf("Content-Type %q: answered %d %s", ct, w.Code, w.Body.String())
		}
	}
	r, _ := jsonReq("POST", "/emails", body)
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	if est, err := v.Estimate(r, []byte(body)); err != nil || est.Cost != 3*DefaultPerEmailUSD {
		t.Errorf("JSON with charset: %+v %v", est, err)
	}
}

// Finding 8: POST /api-keys mints a Resend key: refused, not free.
func TestAPIKeysRefused(t *testing.T) {
	v := newVendor(t, Config{})
	for _, p := range []string{"/api-keys", "/api-keys/", "/API-Keys", "//api-keys"} {
		r, body := jsonReq("POST", p, `{"name":"x","permission":"full_access"}`)
		_, err := v.Estimate(r, body)
		var ve *vendors.Error
		if !errors.As(err, &ve) || ve.Status != 403 || ve.Outcome != vendors.OutcomeCredentialDenied {
			t.Errorf("POST %s: %v", p, err)
		}
	}
	for _, m := range []string{"GET", "DELETE"} {
		r, body := jsonReq(m, "/api-keys", ``)
		if est, err := v.Estimate(r, body); err != nil || !est.Known {
			t.Errorf("%s /api-keys: %+v %v", m, est, err)
		}
	}
	for _, ep := range freePOSTs {
		if strings.Contains(ep, "api-keys") {
			t.Errorf("the free POSTs list %s", ep)
		}
	}
}

// Finding 1: Resend honours Idempotency-Key on POST for 24 hours, and
// refuses a reused key in its own format.
func TestResendIdempotency(t *testing.T) {
	var vv vendors.Vendor = newVendor(t, Config{})
	h, ok := vv.(vendors.IdempotencyHonouring)
	if !ok {
		t.Fatal("resend.Vendor does not implement IdempotencyHonouring")
	}
	idem := h.Idempotency()
	if idem.Header != "Idempotency-Key" || idem.Window != 24*time.Hour || !idem.Honours("POST", "/emails") || idem.Honours("GET", "/emails") || len(idem.ScopeHeaders) != 0 ||
		!idem.Honours("POST", "/emails/batch") || idem.Honours("POST", "/broadcasts") || idem.Honours("POST", "/emails/x/cancel") {
		t.Errorf("idempotency %+v", idem)
	}
	for _, c := range []struct {
		e    vendors.Error
		name string
	}{{idem.Mismatch, "invalid_idempotent_request"}, {idem.InFlight, "concurrent_idempotent_requests"}} {
		w := httptest.NewRecorder()
		e := c.e
		vv.WriteError(w, &e)
		var got vendors.ResendError
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 409 || got.StatusCode != 409 || got.Name != c.name || got.Message == "" {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body.String())
		}
	}
	if !idem.InFlight.Retryable || idem.Mismatch.Retryable {
		t.Error("in-flight is retryable, a mismatch is not")
	}
}

// resend-go through the gate: an array element holding "a, b, c" is three
// recipients, and creating an API key is refused before Resend is called.
func TestResendGoCountsEveryAddress(t *testing.T) {
	up := &fakeResend{}
	us := httptest.NewServer(up)
	defer us.Close()
	usURL, _ := url.Parse(us.URL)
	gate := &miniGate{v: newVendor(t, Config{}), upstream: usURL, cap: 2 * DefaultPerEmailUSD}
	kb := httptest.NewServer(gate)
	defer kb.Close()
	c := resendgo.NewCustomClient(kb.Client(), vaultKey)
	c.BaseURL, _ = url.Parse(kb.URL + "/")

	_, err := c.Emails.Send(&resendgo.SendEmailRequest{From: "run@x.dev", To: []string{"a@y.dev, b@y.dev, c@y.dev"}, Subject: "s", Text: "t"})
	if !errors.Is(err, resendgo.ErrRateLimit) {
		t.Fatalf("three recipients in one string on a two-email cap: %v", err)
	}
	if _, err := c.ApiKeys.Create(&resendgo.CreateApiKeyRequest{Name: "escape"}); err == nil || !strings.Contains(err.Error(), "mints vendor credentials") {
		t.Fatalf("api key create: %v", err)
	}
	if len(up.reqs) != 0 {
		t.Fatalf("upstream reached %d times", len(up.reqs))
	}
}
