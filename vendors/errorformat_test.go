package vendors

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteErrorFormats(t *testing.T) {
	capHit := &Error{Status: 429, Code: "keybrake_cap_hit", Message: "Cap reached.", CapHit: true}
	cases := []struct {
		format string
		want   string
		header map[string]string
	}{
		{FormatJSON, `{"error":{"code":"keybrake_cap_hit","message":"Cap reached."}}`, map[string]string{"X-Should-Retry": "false"}},
		{FormatStripe, `{"error":{"code":"keybrake_cap_hit","message":"Cap reached.","type":"invalid_request_error"}}`, map[string]string{"Stripe-Should-Retry": "false"}},
		{FormatTwilio, `{"code":20429,"message":"Cap reached.","more_info":"https://www.twilio.com/docs/errors/20429","status":429}`, nil},
		{FormatResend, `{"statusCode":429,"name":"daily_quota_exceeded","message":"Cap reached."}`, nil},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		WriteError(c.format, w, capHit)
		if w.Code != 429 || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: status %d, content type %q", c.format, w.Code, w.Header().Get("Content-Type"))
		}
		if got := strings.TrimSpace(w.Body.String()); got != c.want {
			t.Errorf("%s: body %s; want %s", c.format, got, c.want)
		}
		for k, v := range c.header {
			if w.Header().Get(k) != v {
				t.Errorf("%s: header %s = %q; want %q", c.format, k, w.Header().Get(k), v)
			}
		}
	}
	// A retryable refusal leaves retry decisions to the SDK.
	w := httptest.NewRecorder()
	WriteJSONError(w, &Error{Status: 503, Code: "keybrake_ledger_unavailable", Message: "x", Retryable: true})
	if w.Header().Get("X-Should-Retry") != "" {
		t.Error("retryable refusal says do not retry")
	}
	names := map[*Error]string{
		{Status: 401, Code: "keybrake_missing_credential"}: "missing_api_key",
		{Status: 401, Code: "keybrake_invalid_key"}:        "invalid_api_key",
		{Status: 403, Code: "keybrake_endpoint_denied"}:    "restricted_api_key",
		{Status: 400}: "validation_error",
		{Status: 429}: "rate_limit_exceeded",
		{Status: 503}: "application_error",
	}
	for e, want := range names {
		if got := ResendName(e); got != want {
			t.Errorf("ResendName(%d %s) = %s; want %s", e.Status, e.Code, got, want)
		}
	}
	for status, want := range map[int]int{401: 20003, 403: 20403, 404: 20404, 400: 20422, 429: 20429, 500: 20500, 503: 20503} {
		if got := TwilioCode(status); got != want {
			t.Errorf("TwilioCode(%d) = %d; want %d", status, got, want)
		}
	}
}
