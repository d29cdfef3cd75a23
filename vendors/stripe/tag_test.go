package stripe

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/vendors"
)

func TestTag(t *testing.T) {
	v := &Vendor{}
	tag := vendors.CallTag{ID: "ktABC", RunLabel: "windmill/run 7"}
	keys := func(n int) string {
		many := make([]string, 0, n)
		for i := range n {
			many = append(many, fmt.Sprintf("metadata[k%d]=v", i))
		}
		return strings.Join(many, "&")
	}
	for name, tc := range map[string]struct {
		path, body string
		want       map[string]string // metadata added; nil: not tagged
		refused    string            // the refusal's code
	}{
		"plain create":       {path: "/v1/payment_intents", body: "amount=500&currency=usd", want: map[string]string{"keybrake_call_id": "ktABC", "keybrake_run": "windmill/run 7"}},
		"client metadata":    {path: "/v1/charges", body: "amount=5&metadata%5Border%5D=42", want: map[string]string{"keybrake_call_id": "ktABC", "keybrake_run": "windmill/run 7", "order": "42"}},
		"48 keys fit":        {path: "/v1/transfers", body: keys(48), want: map[string]string{"keybrake_call_id": "ktABC", "k47": "v"}},
		"client's own key":   {path: "/v1/refunds", body: "charge=ch_1&metadata[keybrake_run]=mine", refused: "keybrake_reserved_metadata"},
		"client's call id":   {path: "/v1/payment_intents", body: "amount=900&currency=usd&metadata[keybrake_call_id]=mine", refused: "keybrake_reserved_metadata"},
		"upper case":         {path: "/v1/payment_intents", body: "amount=900&currency=usd&metadata[KEYBRAKE_CALL_ID]=mine", refused: "keybrake_reserved_metadata"},
		"49 keys: no room":   {path: "/v1/transfers", body: keys(49), refused: "keybrake_metadata_full"},
		"50 keys: no room":   {path: "/v1/payment_intents", body: keys(50), refused: "keybrake_metadata_full"},
		"bare metadata":      {path: "/v1/payouts", body: "amount=5&metadata=", refused: "keybrake_metadata_cleared"},
		"not a create":       {path: "/v1/payment_intents/pi_1/confirm", body: ""},
		"update clearing":    {path: "/v1/payment_intents/pi_1", body: "metadata=", refused: "keybrake_metadata_cleared"},
		"update forging":     {path: "/v1/charges/ch_1", body: "metadata[keybrake_call_id]=ktOther", refused: "keybrake_reserved_metadata"},
		"nested forging":     {path: "/v1/checkout/sessions", body: "mode=payment&payment_intent_data[metadata][keybrake_call_id]=x", refused: "keybrake_reserved_metadata"},
		"free create forges": {path: "/v1/customers", body: "email=a@b.c&metadata[keybrake_call_id]=x", refused: "keybrake_reserved_metadata"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			estErr := checkMetadata(r, tc.path, []byte(tc.body))
			out, err := v.Tag(r, tc.path, []byte(tc.body), tag)
			if tc.refused != "" {
				var ve *vendors.Error
				if !errors.As(estErr, &ve) || ve.Code != tc.refused || ve.Status != 400 {
					t.Fatalf("checkMetadata = %v; want a 400 %s", estErr, tc.refused)
				}
				if taggedCreates[tc.path] && err == nil {
					t.Fatalf("Tag = %q; want it refused as well", out)
				}
				return
			}
			if estErr != nil || err != nil {
				t.Fatalf("refused: %v / %v", estErr, err)
			}
			if tc.want == nil {
				if out != nil {
					t.Fatalf("tagged: %s", out)
				}
				return
			}
			if !strings.HasPrefix(string(out), tc.body+"&") {
				t.Fatalf("Tag = %q; want the client's bytes first", out)
			}
			q, err := url.ParseQuery(string(out))
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if got := q["metadata["+k+"]"]; len(got) != 1 || got[0] != want {
					t.Errorf("metadata[%s] = %q; want %q", k, got, want)
				}
			}
		})
	}
	// A run label over Stripe's 500-character value limit is left out;
	// the call id never is.
	r := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader("amount=1"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	out, err := v.Tag(r, "/v1/payment_intents", []byte("amount=1"), vendors.CallTag{ID: "ktX", RunLabel: strings.Repeat("a", 501)})
	if err != nil || strings.Contains(string(out), "keybrake_run") || !strings.Contains(string(out), "ktX") {
		t.Fatalf("long run label: %q %v", out, err)
	}
	// A create Keybrake cannot add to is refused, not forwarded untagged.
	r = httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader(`{"amount":1}`))
	r.Header.Set("Content-Type", "application/json")
	if out, err := v.Tag(r, "/v1/payment_intents", []byte(`{"amount":1}`), tag); err == nil {
		t.Fatalf("JSON create tagged: %q", out)
	}
}
