package simvendor

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stripe/stripe-go/v82"
)

func stripeSDK(e *env, key string) *stripe.Client {
	retries := int64(0)
	backends := stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(e.stripe.URL),
		MaxNetworkRetries: &retries,
		HTTPClient:        &http.Client{},
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return stripe.NewClient(key, stripe.WithBackends(backends))
}

// The official SDK creates, confirms and captures (with overcapture) a
// PaymentIntent against the simulator, and money moves only at capture.
func TestStripeSDKPaymentIntentLifecycle(t *testing.T) {
	e := newEnv(t)
	sc := stripeSDK(e, testStripeKey)
	ctx := context.Background()
	pi, err := sc.V1PaymentIntents.Create(ctx, &stripe.PaymentIntentCreateParams{
		Amount:        stripe.Int64(1000),
		Currency:      stripe.String("usd"),
		CaptureMethod: stripe.String("manual"),
		PaymentMethodOptions: &stripe.PaymentIntentCreatePaymentMethodOptionsParams{
			Card: &stripe.PaymentIntentCreatePaymentMethodOptionsCardParams{RequestOvercapture: stripe.String("if_available")},
		},
		Metadata: map[string]string{"order": "42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if pi.Status != stripe.PaymentIntentStatusRequiresPaymentMethod || pi.Metadata["order"] != "42" {
		t.Fatalf("created %+v", pi)
	}
	pi, err = sc.V1PaymentIntents.Confirm(ctx, pi.ID, &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String("pm_card_visa")})
	if err != nil {
		t.Fatal(err)
	}
	if pi.Status != stripe.PaymentIntentStatusRequiresCapture || pi.AmountCapturable != 1000 {
		t.Fatalf("confirmed %+v", pi)
	}
	wantMoved(t, e.sim, VendorStripe, 0)
	if got := e.sim.Authorized(VendorStripe); got != 10_000_000 {
		t.Fatalf("Authorized = %d", got)
	}
	pi, err = sc.V1PaymentIntents.Capture(ctx, pi.ID, &stripe.PaymentIntentCaptureParams{AmountToCapture: stripe.Int64(1200)})
	if err != nil {
		t.Fatal(err)
	}
	if pi.Status != stripe.PaymentIntentStatusSucceeded || pi.AmountReceived != 1200 {
		t.Fatalf("captured %+v", pi)
	}
	wantMoved(t, e.sim, VendorStripe, 12_000_000)
	if got := e.sim.Authorized(VendorStripe); got != 0 {
		t.Fatalf("Authorized after capture = %d", got)
	}

	// Search by metadata, once the search index has caught up.
	e.clock.Advance(DefaultStripeSearchLag)
	var found []string
	for p, err := range sc.V1PaymentIntents.Search(ctx, &stripe.PaymentIntentSearchParams{
		SearchParams: stripe.SearchParams{Query: "metadata['order']:'42'"},
	}) {
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, p.ID)
	}
	if len(found) != 1 || found[0] != pi.ID {
		t.Fatalf("search found %v", found)
	}
}

func TestStripeSDKIdempotentReplayAndErrors(t *testing.T) {
	e := newEnv(t)
	sc := stripeSDK(e, testStripeKey)
	ctx := context.Background()
	params := func(amount int64) *stripe.PaymentIntentCreateParams {
		p := &stripe.PaymentIntentCreateParams{Amount: stripe.Int64(amount), Currency: stripe.String("usd"),
			Confirm: stripe.Bool(true), PaymentMethod: stripe.String("pm_card_visa")}
		p.SetIdempotencyKey("order-1")
		return p
	}
	a, err := sc.V1PaymentIntents.Create(ctx, params(500))
	if err != nil {
		t.Fatal(err)
	}
	b, err := sc.V1PaymentIntents.Create(ctx, params(500))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || b.LastResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %s vs %s, header %q", a.ID, b.ID, b.LastResponse.Header.Get("Idempotent-Replayed"))
	}
	wantMoved(t, e.sim, VendorStripe, 5_000_000)

	_, err = sc.V1PaymentIntents.Create(ctx, params(900))
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != 400 || se.Type != stripe.ErrorTypeIdempotency {
		t.Fatalf("changed params: %v", err)
	}

	_, err = sc.V1PaymentIntents.Create(ctx, &stripe.PaymentIntentCreateParams{
		Amount: stripe.Int64(1), Currency: stripe.String("usd"), Confirm: stripe.Bool(true), PaymentMethod: stripe.String("pm_card_chargeDeclined")})
	if !errors.As(err, &se) || se.HTTPStatusCode != 402 || se.Code != stripe.ErrorCodeCardDeclined {
		t.Fatalf("decline: %v", err)
	}

	_, err = stripeSDK(e, "sk_test_wrongwrongwrong").V1PaymentIntents.Retrieve(ctx, a.ID, nil)
	if !errors.As(err, &se) || se.HTTPStatusCode != 401 || se.Type != stripe.ErrorTypeInvalidRequest {
		t.Fatalf("wrong key: %v", err)
	}
	wantMoved(t, e.sim, VendorStripe, 5_000_000)
}
