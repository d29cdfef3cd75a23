package stripe

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	keyrules "github.com/keybrake/keybrake/rules"
)

// TestEstimateSubjects: a create carries the request's customer and
// currency; a confirm, capture or refund the object's, read at Stripe as
// pricing reads it, whatever the request says; an update that moves the
// intent to another customer, the new one.
func TestEstimateSubjects(t *testing.T) {
	v, srv := newObjectVendor(t)
	srv.objects["/v1/payment_intents/pi_cus"] = `{"id":"pi_cus","object":"payment_intent","amount":1000,"currency":"usd","customer":"cus_A","status":"requires_confirmation"}`
	srv.objects["/v1/charges/ch_cus"] = `{"id":"ch_cus","object":"charge","amount":2000,"amount_captured":2000,"currency":"GBP","customer":{"id":"cus_B","object":"customer"}}`
	for _, tc := range []struct {
		path, body string
		want       keyrules.Subjects
	}{
		{"/v1/payment_intents", "amount=100&currency=USD&customer=cus_Z", keyrules.Subjects{"customer": {"cus_Z"}, "currency": {"usd"}}},
		{"/v1/payment_intents", "amount=100&currency=usd", keyrules.Subjects{"currency": {"usd"}}},
		{"/v1/payment_intents/pi_cus/confirm", "customer=cus_Z", keyrules.Subjects{"customer": {"cus_A"}, "currency": {"usd"}}},
		{"/v1/payment_intents/pi_cus", "amount=2000&customer=cus_Z", keyrules.Subjects{"customer": {"cus_Z"}, "currency": {"usd"}}},
		{"/v1/refunds", "charge=ch_cus&customer=cus_Z", keyrules.Subjects{"customer": {"cus_B"}, "currency": {"gbp"}}},
		{"/v1/charges/ch_cus/refunds", "", keyrules.Subjects{"customer": {"cus_B"}, "currency": {"gbp"}}},
	} {
		r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		est, err := v.Estimate(r, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if len(est.Subjects) != len(tc.want) {
			t.Errorf("%s %s: subjects %v, want %v", tc.path, tc.body, est.Subjects, tc.want)
		}
		for k, want := range tc.want {
			if !slices.Equal(est.Subjects[k], want) {
				t.Errorf("%s %s: %s = %v, want %v", tc.path, tc.body, k, est.Subjects[k], want)
			}
		}
	}
}
