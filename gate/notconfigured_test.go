package gate

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/stripe"
)

// TestGateRefusesAVendorNotConfigured: a vendor built without its secret
// has every call refused with 503 in its own format, carrying the message
// the gate was given, before a key is looked up or anything is reserved or
// forwarded.
func TestGateRefusesAVendorNotConfigured(t *testing.T) {
	f := newGTFixture(t, "100")
	bare, err := stripe.New(stripe.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const msg = "Keybrake is not configured for stripe: set the environment variable STRIPE_SECRET_KEY and restart Keybrake."
	f.gate, err = New(Config{Vendor: bare, Store: f.store, Keys: f.gate.cfg.Keys, NotConfigured: msg})
	if err != nil {
		t.Fatal(err)
	}
	forwarded := false
	w := f.charge(func(http.ResponseWriter, *http.Request) error { forwarded = true; return nil }, "")
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusServiceUnavailable ||
		body.Error.Code != vendors.CodeNotConfigured || body.Error.Message != msg || w.Header().Get("Stripe-Should-Retry") != "false" {
		t.Fatalf("answer %d %s %v", w.Code, strings.TrimSpace(w.Body.String()), w.Header())
	}
	if forwarded {
		t.Error("a call of a vendor without its secret was forwarded")
	}
	calls, _, err := f.store.Audit(context.Background(), ledger.AuditFilter{KeyID: f.key.ID})
	if err != nil || len(calls) != 0 {
		t.Fatalf("audit: %v, %d calls recorded", err, len(calls))
	}
}
