package stripe

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/vendors"
)

// FuzzEstimate: no request body or path, however hostile, panics the
// estimate, and every refusal is a clean 400 the gate can render.
func FuzzEstimate(f *testing.F) {
	for _, seed := range []string{
		"amount=500&currency=usd", "amount=1&amount=2&currency=usd", "amount=%zz", "amount=99999999999999999999&currency=usd",
		"amount=-1&currency=usd", "amount=1&currency=jpy", "amount=1&currency=", "currency=usd", "",
	} {
		f.Add("POST", "/v1/payment_intents", seed)
		f.Add("POST", "/v1/refunds", seed)
		f.Add("POST", "/v1/payment_intents/pi_1/confirm", seed)
	}
	v, _ := New(Config{SecretKey: "sk_test_x"})
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " ?#\x00") || strings.ContainsAny(method, " /\x00") || method == "" {
			return
		}
		r, err := http.NewRequest(method, "http://x"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		est, err := v.Estimate(r, []byte(body))
		if err != nil {
			var ve *vendors.Error
			if !errors.As(err, &ve) || ve.Status != http.StatusBadRequest || ve.Code == "" {
				t.Fatalf("refusal %v is not a clean 400", err)
			}
			return
		}
		if est.Cost < 0 {
			t.Fatalf("negative estimate %d", est.Cost)
		}
		// Settling whatever came back must not panic either.
		_ = v.Settle(r, 200, http.Header{}, []byte(body), est)
		w := httptest.NewRecorder()
		v.WriteError(w, &vendors.Error{Status: 429, Code: "x", Message: body})
	})
}
