package gate

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// TestGateEnqueuesAlerts: a settled call past a threshold, an unknown
// outcome and a cap hit each put one event in the outbox; calls far from
// the cap read nothing.
func TestGateEnqueuesAlerts(t *testing.T) {
	f := newGTFixture(t, "10")
	ob := f.store.(ledger.Outbox)
	hooks := []alerts.Webhook{{Name: "ops", URL: "http://127.0.0.1:1/", Secret: "s", Thresholds: []int{50, 100}}}
	if err := hooks[0].Validate(); err != nil {
		t.Fatal(err)
	}
	reads := &countingKeys{KeyReader: f.store}
	f.gate.cfg.Alerts = &alerts.Alerter{Outbox: ob, Keys: reads, Webhooks: hooks}

	ok := answer(200, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`)
	f.charge(ok, "") // $5 of $10: 50%
	f.now = f.now.Add(time.Second)
	f.charge(answer(500, `{}`), "")
	f.now = f.now.Add(time.Second)
	if w := f.charge(ok, ""); w.Code != http.StatusTooManyRequests {
		t.Fatalf("third call: %d, want a cap hit", w.Code)
	}
	f.charge(ok, "") // a second cap hit: no second event
	unknown := ""
	events, err := ob.ClaimEvents(context.Background(), f.now.Add(time.Minute), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.DedupeKey)
		if e.Type == alerts.EventCallUnknown {
			unknown = e.DedupeKey
		}
	}
	want := fmt.Sprintf("[key.threshold:%[1]s:total:50 %[2]s key.cap_hit:%[1]s:2026-11-27]", f.key.ID, unknown)
	if unknown == "" || fmt.Sprint(got) != want {
		t.Errorf("events %v; want %s", got, want)
	}
	if reads.n != 1 {
		t.Errorf("the alerter read the key %d times; want once (after the call that could cross)", reads.n)
	}
}

// TestGateAlertsSkipFarFromTheCap: a call far below the lowest threshold
// costs no ledger read.
func TestGateAlertsSkipFarFromTheCap(t *testing.T) {
	f := newGTFixture(t, "100")
	hooks := []alerts.Webhook{{Name: "ops", URL: "http://127.0.0.1:1/", Secret: "s"}}
	_ = hooks[0].Validate()
	reads := &countingKeys{KeyReader: f.store}
	f.gate.cfg.Alerts = &alerts.Alerter{Outbox: f.store.(ledger.Outbox), Keys: reads, Webhooks: hooks}
	for range 3 { // $15 of $100
		f.charge(answer(200, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`), "")
	}
	if reads.n != 0 {
		t.Errorf("%d key reads for calls at 15%% of the cap; want none", reads.n)
	}
}

type countingKeys struct {
	alerts.KeyReader
	n int
}

func (c *countingKeys) GetKey(ctx context.Context, id string, now time.Time) (ledger.KeyUsage, error) {
	c.n++
	return c.KeyReader.GetKey(ctx, id, now)
}

// TestGateEnqueuesBudgetAlerts: calls of a token-issued key that take the
// token's budget past a threshold enqueue budget.threshold once per
// threshold, for the total and the daily budget alike; a key no token
// issued never reads a token.
func TestGateEnqueuesBudgetAlerts(t *testing.T) {
	f := newGTFixture(t, "100")
	ctx := context.Background()
	ob := f.store.(ledger.Outbox)
	hooks := []alerts.Webhook{{Name: "ops", URL: "http://127.0.0.1:1/", Secret: "s", Thresholds: []int{50, 100}, Events: []string{alerts.EventBudgetThreshold}}}
	if err := hooks[0].Validate(); err != nil {
		t.Fatal(err)
	}
	tokens := &countingTokens{TokenReader: f.store}
	f.gate.cfg.Alerts = &alerts.Alerter{Outbox: ob, Keys: f.store, Tokens: tokens, Webhooks: hooks}
	ok := answer(200, `{"id":"pi_1","object":"payment_intent","amount":500,"currency":"usd"}`)

	f.charge(ok, "") // the fixture's key has no token
	if tokens.n != 0 {
		t.Fatalf("%d token reads for a key no token issued; want none", tokens.n)
	}

	total, daily := money.Micros(10_000_000), money.Micros(20_000_000)
	tok := ledger.Token{ID: "tkGateTest000000000000", Hash: ledger.HashSecret("kbt_gate_budget"), Name: "ci", Role: "issuer",
		TotalCap: &total, DailyCap: &daily, CreatedAt: f.now}
	if err := f.store.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	f.secret = "kbGateTestSecretTok00000000000000000000"
	f.key.ID, f.key.Hash, f.key.TokenID = "vkGateTestTok000000000", ledger.HashSecret(f.secret), tok.ID
	if err := f.store.CreateKey(ctx, f.key); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	f.charge(ok, "") // $5 of $10 total (50%), of $20 daily (25%)
	f.now = f.now.Add(time.Second)
	f.charge(ok, "") // $10: total 100%, daily 50%
	if w := f.charge(ok, ""); w.Code != http.StatusTooManyRequests {
		t.Fatalf("third call: %d, want the budget hit", w.Code)
	}
	events, err := ob.ClaimEvents(ctx, f.now.Add(time.Minute), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.DedupeKey)
	}
	wantSet := map[string]bool{
		"budget.threshold:" + tok.ID + ":total:50":            true,
		"budget.threshold:" + tok.ID + ":total:100":           true,
		"budget.threshold:" + tok.ID + ":daily:2026-11-27:50": true,
	}
	if len(got) != len(wantSet) {
		t.Fatalf("events %v; want %v", got, wantSet)
	}
	for _, k := range got {
		if !wantSet[k] {
			t.Errorf("unexpected event %s (all: %v)", k, got)
		}
	}
	if tokens.n != 2 {
		t.Errorf("%d token reads; want 2 (one per settled spend call)", tokens.n)
	}
}

type countingTokens struct {
	alerts.TokenReader
	n int
}

func (c *countingTokens) GetToken(ctx context.Context, id string, now time.Time) (ledger.TokenUsage, error) {
	c.n++
	return c.TokenReader.GetToken(ctx, id, now)
}
