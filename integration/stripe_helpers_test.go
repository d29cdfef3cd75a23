package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
)

// stripeClient is the official stripe-go SDK pointed at Keybrake, with its
// own retries left on (2) so a test can see that it does not retry refusals.
func stripeClient(n *node, vaultKey, prefix string) *stripe.Client {
	retries := int64(2)
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(n.url + prefix),
		MaxNetworkRetries: &retries,
		HTTPClient:        &http.Client{Timeout: 60 * time.Second},
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return stripe.NewClient(vaultKey, stripe.WithBackends(backends))
}

// createPI creates a PaymentIntent of amount cents through the SDK.
func createPI(c *stripe.Client, amount int64, idemKey string) (*stripe.PaymentIntent, error) {
	p := &stripe.PaymentIntentCreateParams{
		Amount:   stripe.Int64(amount),
		Currency: stripe.String("usd"),
	}
	if idemKey != "" {
		p.SetIdempotencyKey(idemKey)
	}
	return c.V1PaymentIntents.Create(context.Background(), p)
}

// stripeErr asserts err is a *stripe.Error the SDK parsed from Keybrake's
// answer, with that status and code, and returns it.
func stripeErr(t *testing.T, err error, status int, code string) *stripe.Error {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("want *stripe.Error %d %s, got %T %v", status, code, err, err)
	}
	if se.HTTPStatusCode != status || string(se.Code) != code {
		t.Fatalf("stripe error = %d %q (%s); want %d %q", se.HTTPStatusCode, se.Code, se.Msg, status, code)
	}
	if se.Msg == "" || se.Type == "" {
		t.Fatalf("stripe error without a type or message: %+v", se)
	}
	return se
}

// rawStripe sends one raw request at Keybrake's Stripe route and returns
// the status, the headers and the decoded Stripe error envelope.
func rawStripe(t *testing.T, n *node, method, path, auth, body string) (int, http.Header, stripeEnvelope) {
	t.Helper()
	req, _ := http.NewRequest(method, n.url+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env stripeEnvelope
	env.raw = string(raw)
	_ = json.Unmarshal(raw, &env)
	return resp.StatusCode, resp.Header, env
}

// stripeEnvelope is Stripe's error body.
type stripeEnvelope struct {
	Error *struct {
		Type    string `json:"type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw string
}

// wantStripeError asserts a Stripe-shaped refusal.
func wantStripeError(t *testing.T, what string, status int, h http.Header, env stripeEnvelope, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d; want %d (%s)", what, status, wantStatus, env.raw)
		return
	}
	if env.Error == nil || env.Error.Type == "" || env.Error.Message == "" || env.Error.Code != wantCode {
		t.Errorf("%s: body %s; want a Stripe error with code %s", what, env.raw, wantCode)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}
