package gate

import (
	"context"
	"net/http"
	"testing"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// TestStaleAllowlistEntryDeniesOnlyItself: a key stored with an entry the
// grammar now refuses ("GET /v1/customers/", once accepted by the key API
// while the gate's parser refused it and so treated the whole allowlist as
// empty) keeps its valid entries; the stale one matches nothing.
func TestStaleAllowlistEntryDeniesOnlyItself(t *testing.T) {
	f := newGTFixture(t, "100")
	stale := f.key
	stale.ID, stale.Hash = "vkGateStale00000000000", ledger.HashSecret(f.secret+"stale")
	stale.AllowedEndpoints = []string{"GET /v1/customers/", "POST /v1/payment_intents"}
	if err := f.store.CreateKey(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	f.secret += "stale"
	f.key = stale
	if w := f.charge(answer(http.StatusOK, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`), ""); w.Code != http.StatusOK {
		t.Fatalf("charge on the valid entry: %d %s", w.Code, w.Body)
	}
	if got := f.usage().Spent; got != 5*money.PerDollar {
		t.Errorf("spent %s; want 5", got)
	}
}
