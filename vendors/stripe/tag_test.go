package stripe

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/vendors"
)

func TestTag(t *testing.T) {
	v := &Vendor{}
	tag := vendors.CallTag{ID: "clABC", RunLabel: "windmill/run 7"}
	many := make([]string, 0, 49)
	for i := range 49 {
		many = append(many, fmt.Sprintf("metadata[k%d]=v", i))
	}
	for name, tc := range map[string]struct {
		path, body string
		want       map[string]string // metadata added; nil: not tagged
	}{
		"plain create":     {"/v1/payment_intents", "amount=500&currency=usd", map[string]string{"keybrake_call_id": "clABC", "keybrake_run": "windmill/run 7"}},
		"client metadata":  {"/v1/charges", "amount=5&metadata%5Border%5D=42", map[string]string{"keybrake_call_id": "clABC", "keybrake_run": "windmill/run 7", "order": "42"}},
		"client's own key": {"/v1/refunds", "charge=ch_1&metadata[keybrake_run]=mine", map[string]string{"keybrake_call_id": "clABC", "keybrake_run": "mine"}},
		"49 keys: no room": {"/v1/transfers", strings.Join(many, "&"), nil},
		"bare metadata":    {"/v1/payouts", "amount=5&metadata=", nil},
		"not a create":     {"/v1/payment_intents/pi_1/confirm", "", nil},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			out, ok := v.Tag(r, tc.path, []byte(tc.body), tag)
			if tc.want == nil {
				if ok {
					t.Fatalf("tagged: %s", out)
				}
				return
			}
			if !ok || !strings.HasPrefix(string(out), tc.body+"&") {
				t.Fatalf("Tag = %q, %v; want the client's bytes first", out, ok)
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
	// A run label over Stripe's 500-character value limit is left out.
	r := httptest.NewRequest("POST", "/v1/payment_intents", strings.NewReader("amount=1"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	out, ok := v.Tag(r, "/v1/payment_intents", []byte("amount=1"), vendors.CallTag{ID: "clX", RunLabel: strings.Repeat("a", 501)})
	if !ok || strings.Contains(string(out), "keybrake_run") {
		t.Fatalf("long run label: %q %v", out, ok)
	}
}

func TestTagIDIsStablePerIdempotencyKey(t *testing.T) {
	a, b := vendors.TagID("clOne", "vkKey", "idem-1"), vendors.TagID("clTwo", "vkKey", "idem-1")
	if a != b || len(a) != 26 || !strings.HasPrefix(a, "ik") {
		t.Fatalf("TagID = %q, %q; want one ik id for both attempts", a, b)
	}
	if vendors.TagID("clOne", "vkOther", "idem-1") == a || vendors.TagID("clOne", "vkKey", "") != "clOne" {
		t.Fatal("TagID must depend on the key and be the call id without an idempotency key")
	}
}
