package stripe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keybrake/keybrake/vendors"
)

// object is what Keybrake reads of a PaymentIntent or a Charge, at Stripe
// or in Stripe's answer to the call.
type object struct {
	ID               string `json:"id"`
	Object           string `json:"object"`
	Amount           *int64 `json:"amount"`
	AmountCapturable int64  `json:"amount_capturable"`
	AmountReceived   int64  `json:"amount_received"`
	AmountCaptured   int64  `json:"amount_captured"`
	AmountRefunded   int64  `json:"amount_refunded"`
	Currency         string `json:"currency"`
	Status           string `json:"status"`
	// Customer is the customer's id, or the customer object when the
	// lookup expanded it.
	Customer json.RawMessage `json:"customer"`
}

// customerID is the id of the object's customer, "" when it has none.
func (o object) customerID() string {
	var id string
	if json.Unmarshal(o.Customer, &id) == nil {
		return id
	}
	var expanded struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(o.Customer, &expanded) == nil {
		return expanded.ID
	}
	return ""
}

// lookupTimeout bounds one lookup at Stripe.
const lookupTimeout = 10 * time.Second

// scopeHeaders are the request headers that choose which account's objects
// a call sees (Connect); a lookup must see the same account.
var scopeHeaders = []string{"Stripe-Account", "Stripe-Context"}

// lookup fetches a PaymentIntent ("payment_intents") or a Charge
// ("charges") with the real secret, as the account the client's request
// names. The object id comes from a canonical path segment, escaped again
// all the same.
func (v *Vendor) lookup(ctx context.Context, r *http.Request, collection, id string) (object, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		v.upstream+"/v1/"+collection+"/"+url.PathEscape(id), nil)
	if err != nil {
		return object{}, fmt.Errorf("looking up %s at Stripe: %w", id, vendors.Unreachable(err))
	}
	req.Header.Set("Authorization", "Bearer "+v.secretKey)
	for _, h := range scopeHeaders {
		if val := r.Header.Get(h); val != "" {
			req.Header.Set(h, val)
		}
	}
	resp, err := v.client.Do(req)
	if err != nil {
		// The key holder may read this error: the client's own names
		// the upstream's URL.
		return object{}, fmt.Errorf("looking up %s at Stripe: %w", id, vendors.Unreachable(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return object{}, fmt.Errorf("reading %s from Stripe: %w", id, vendors.Unreachable(err))
	}
	if resp.StatusCode != http.StatusOK {
		return object{}, fmt.Errorf("Stripe answered %d for %s", resp.StatusCode, id)
	}
	var o object
	if err := json.Unmarshal(body, &o); err != nil || o.Amount == nil || o.Currency == "" {
		return object{}, fmt.Errorf("Stripe's answer for %s has no amount and currency", id)
	}
	if o.ID != "" && o.ID != id {
		return object{}, fmt.Errorf("Stripe answered with %s for %s", o.ID, id)
	}
	return o, nil
}

// trimBase returns an upstream base URL without its trailing slash.
func trimBase(u string) string { return strings.TrimRight(u, "/") }
