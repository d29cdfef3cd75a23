package gate

import (
	"context"
	"testing"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// TestGateSettlesAfterResponse: with SettleAfterResponse the handler
// returns with the settlement queued in the ledger's batches; once the
// queue is written the call is settled, a decline released, and the key's
// spend is the settled cost. A retry with the same idempotency key right
// after its original's answer is a free replay, not "in flight": the
// original's settlement was queued before the handler returned.
func TestGateSettlesAfterResponse(t *testing.T) {
	f := newGTFixture(t, "100")
	cfg := f.gate.cfg
	cfg.SettleAfterResponse = true
	var err error
	if f.gate, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	b, ok := f.store.(ledger.Batcher)
	if !ok {
		t.Fatal("the embedded ledger writes no batches")
	}
	paid := answer(200, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`)
	if w := f.charge(paid, "idem-later"); w.Code != 200 {
		t.Fatalf("charge: %d %s", w.Code, w.Body)
	}
	if w := f.charge(paid, "idem-later"); w.Code != 200 {
		t.Fatalf("retry of the same charge right after its answer: %d %s", w.Code, w.Body)
	}
	f.charge(answer(402, `{"error":{"type":"card_error","code":"card_declined","message":"declined"}}`), "")
	if err := b.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls, _, err := f.store.Audit(context.Background(), ledger.AuditFilter{KeyID: f.key.ID})
	if err != nil || len(calls) != 3 {
		t.Fatalf("audit: %v, %d calls", err, len(calls))
	}
	if c := calls[0]; c.CostState != ledger.CostSettled || c.Cost != 5*money.PerDollar || c.VendorTxnID != "pi_1" {
		t.Fatalf("settled call = %+v", c)
	}
	if c := calls[1]; c.Outcome != ledger.OutcomeIdempotentReplay || c.ReplayOf != calls[0].CallID {
		t.Fatalf("retry = %+v; want a replay of %s", c, calls[0].CallID)
	}
	if c := calls[2]; c.CostState != ledger.CostReleased || c.StatusCode != 402 {
		t.Fatalf("declined call = %+v", c)
	}
	if u := f.usage(); u.Spent != 5*money.PerDollar || u.Reserved != 0 {
		t.Fatalf("usage: spent %s, reserved %s; want 5 and 0", u.Spent, u.Reserved)
	}
}
