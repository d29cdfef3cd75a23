package ledgertest

import (
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// The expected counters in these tests follow store.go's table:
//   Settle:      reserved -= held; spent += cost - call.Cost
//   Release:     reserved -= held; spent -= call.Cost
//   MarkUnknown: nothing moves.

func testSettleCounters(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.DailyCap, k.TotalCap = capOf("50"), capOf("100") })
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var u usage // expected; every call starts on t0's day
	want := func() {
		t.Helper()
		u.DaySpent, u.DayReserved = u.Spent, u.Reserved
		f.wantUsage(k.ID, t0, u)
	}

	// Settle below the estimate; a second settlement of any kind does nothing.
	c1 := f.reserve(k, usd("10"), at(1), ledger.OutcomeForwarded)
	u.Reserved, u.Calls = usd("10"), 1
	want()
	f.settle(c1, ledger.Settlement{StatusCode: 200, Cost: usd("7"), Now: at(2)})
	u.Reserved, u.Spent = 0, usd("7")
	want()
	settled := f.call(k.ID, c1)
	f.wantCall(settled, ledger.Call{
		CallID: c1, KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe", Method: "POST",
		Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", StatusCode: 200,
		Outcome: ledger.OutcomeForwarded, Reserved: usd("10"), Cost: usd("7"),
		CostState: ledger.CostSettled, StartedAt: at(1), FinishedAt: ptr(at(2)),
	})
	f.settle(c1, ledger.Settlement{StatusCode: 500, Cost: usd("9"), Outcome: ledger.OutcomeUpstreamError, VendorTxnID: "pi_late", Now: at(3)})
	f.release(c1, ledger.Settlement{StatusCode: 402, Now: at(3)})
	f.markUnknown(c1, ledger.Settlement{StatusCode: 502, Now: at(3)})
	want()
	f.wantCall(f.call(k.ID, c1), settled)

	// Settle above the estimate: the real cost counts in full.
	c2 := f.reserve(k, usd("10"), at(4), ledger.OutcomeForwarded)
	f.settle(c2, ledger.Settlement{StatusCode: 200, Cost: usd("12"), Now: at(5)})
	u.Spent, u.Calls = usd("19"), 2
	want()

	// Release returns the reservation; the outcome stays unless given.
	c3 := f.reserve(k, usd("5"), at(6), ledger.OutcomeForwarded)
	u.Reserved, u.Calls = usd("5"), 3
	want()
	f.release(c3, ledger.Settlement{StatusCode: 402, Now: at(7)})
	u.Reserved = 0
	want()
	released := f.call(k.ID, c3)
	if released.CostState != ledger.CostReleased || released.Cost != 0 || released.Reserved != usd("5") ||
		released.StatusCode != 402 || released.Outcome != ledger.OutcomeForwarded {
		t.Fatalf("released call = %+v", released)
	}
	f.release(c3, ledger.Settlement{StatusCode: 402, Now: at(8)})
	f.settle(c3, ledger.Settlement{StatusCode: 200, Cost: usd("5"), Now: at(8)})
	want()
	f.wantCall(f.call(k.ID, c3), released)

	// MarkUnknown keeps the reservation; a later Settle or Release clears it.
	c4 := f.reserve(k, usd("5"), at(9), ledger.OutcomeForwarded)
	f.markUnknown(c4, ledger.Settlement{StatusCode: 502, Outcome: ledger.OutcomeUpstreamError, Now: at(10)})
	u.Reserved, u.Calls = usd("5"), 4
	want()
	unknown := f.call(k.ID, c4)
	if unknown.CostState != ledger.CostUnknown || unknown.Outcome != ledger.OutcomeUpstreamError ||
		unknown.StatusCode != 502 || unknown.Cost != 0 || unknown.FinishedAt == nil || !unknown.FinishedAt.Equal(at(10)) {
		t.Fatalf("unknown call = %+v", unknown)
	}
	f.markUnknown(c4, ledger.Settlement{StatusCode: 504, Now: at(11)})
	want()
	if c := f.call(k.ID, c4); c.CostState != ledger.CostUnknown {
		t.Fatalf("second MarkUnknown: state %q", c.CostState)
	}
	f.settle(c4, ledger.Settlement{StatusCode: 200, Cost: usd("4"), Now: at(12)})
	u.Reserved, u.Spent = 0, usd("23")
	want()
	if c := f.call(k.ID, c4); c.CostState != ledger.CostSettled || c.Cost != usd("4") || c.Outcome != ledger.OutcomeUpstreamError {
		t.Fatalf("settled unknown call = %+v; outcome kept when none given", c)
	}

	c5 := f.reserve(k, usd("5"), at(13), ledger.OutcomeForwarded)
	f.markUnknown(c5, ledger.Settlement{Now: at(14)})
	f.release(c5, ledger.Settlement{StatusCode: 400, Now: at(15)})
	u.Calls = 5
	want()
	if c := f.call(k.ID, c5); c.CostState != ledger.CostReleased || c.Cost != 0 {
		t.Fatalf("released unknown call = %+v", c)
	}

	// A zero estimate settles to a real cost like any other.
	c6 := f.reserve(k, 0, at(16), ledger.OutcomeForwarded)
	f.settle(c6, ledger.Settlement{StatusCode: 200, Cost: usd("0.000001"), Now: at(17)})
	u.Spent, u.Calls = usd("23.000001"), 6
	want()
}

// testSettleUnpriced follows a Twilio message: the estimate is kept as a
// provisional cost until the price is known, then settled to the real one.
func testSettleUnpriced(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.Vendor, k.TotalCap = "twilio", capOf("0.05") })
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	var u usage
	want := func() {
		t.Helper()
		u.DaySpent, u.DayReserved = u.Spent, u.Reserved
		f.wantUsage(k.ID, t0, u)
	}

	c1 := f.reserve(k, usd("0.0158"), at(1), ledger.OutcomeForwarded)
	f.settle(c1, ledger.Settlement{StatusCode: 201, Cost: usd("0.0158"), CostState: ledger.CostUnpriced, VendorTxnID: "SM1", Now: at(2)})
	u.Spent, u.Calls = usd("0.0158"), 1
	want()
	if c := f.call(k.ID, c1); c.CostState != ledger.CostUnpriced || c.Cost != usd("0.0158") {
		t.Fatalf("unpriced call = %+v", c)
	}
	// The real price arrives later and differs: only the difference moves.
	f.settle(c1, ledger.Settlement{StatusCode: 201, Cost: usd("0.0079"), Now: at(60)})
	u.Spent = usd("0.0079")
	want()
	if c := f.call(k.ID, c1); c.CostState != ledger.CostSettled || c.Cost != usd("0.0079") || c.Reserved != usd("0.0158") {
		t.Fatalf("priced call = %+v", c)
	}
	f.settle(c1, ledger.Settlement{StatusCode: 201, Cost: usd("1"), Now: at(61)})
	want()

	// MarkUnknown leaves an unpriced call as it is; Release takes back its
	// provisional cost.
	c2 := f.reserve(k, usd("0.02"), at(3), ledger.OutcomeForwarded)
	f.settle(c2, ledger.Settlement{StatusCode: 201, Cost: usd("0.02"), CostState: ledger.CostUnpriced, Now: at(4)})
	u.Spent, u.Calls = usd("0.0279"), 2
	want()
	f.markUnknown(c2, ledger.Settlement{StatusCode: 201, Now: at(5)})
	want()
	if c := f.call(k.ID, c2); c.CostState != ledger.CostUnpriced || c.Cost != usd("0.02") {
		t.Fatalf("MarkUnknown on unpriced call = %+v", c)
	}
	f.release(c2, ledger.Settlement{StatusCode: 201, Now: at(62)})
	u.Spent = usd("0.0079")
	want()
	if c := f.call(k.ID, c2); c.CostState != ledger.CostReleased || c.Cost != 0 {
		t.Fatalf("released unpriced call = %+v", c)
	}

	// A provisional cost may be revised before the final one.
	c3 := f.reserve(k, usd("0.01"), at(6), ledger.OutcomeForwarded)
	f.settle(c3, ledger.Settlement{StatusCode: 201, Cost: usd("0.01"), CostState: ledger.CostUnpriced, Now: at(7)})
	f.settle(c3, ledger.Settlement{StatusCode: 201, Cost: usd("0.012"), CostState: ledger.CostUnpriced, Now: at(8)})
	u.Spent, u.Calls = usd("0.0199"), 3
	want()
	f.settle(c3, ledger.Settlement{StatusCode: 201, Cost: usd("0.011"), Now: at(63)})
	u.Spent = usd("0.0189")
	want()

	// Provisional and settled costs both count against the cap, exactly.
	f.reserve(k, usd("0.031100"), at(64), ledger.OutcomeForwarded)
	f.reserve(k, usd("0.000001"), at(64), ledger.OutcomeCapHit)
}

func testSettleVendorFields(f *fixture) {
	k := f.newKey(nil)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	c1 := f.reserve(k, usd("5"), at(1), ledger.OutcomeForwarded)
	f.settle(c1, ledger.Settlement{StatusCode: 200, Cost: usd("5"), VendorAmount: ptr(int64(500)),
		VendorCurrency: "usd", VendorTxnID: "pi_123", Now: at(2)})
	f.wantCall(f.call(k.ID, c1), ledger.Call{
		CallID: c1, KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe", Method: "POST",
		Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", StatusCode: 200,
		Outcome: ledger.OutcomeForwarded, Reserved: usd("5"), Cost: usd("5"),
		VendorAmount: ptr(int64(500)), VendorCurrency: "usd", VendorTxnID: "pi_123",
		CostState: ledger.CostSettled, StartedAt: at(1), FinishedAt: ptr(at(2)),
	})

	// Fields not set by a later settlement keep what an earlier one recorded.
	c2 := f.reserve(k, usd("0.02"), at(3), ledger.OutcomeForwarded)
	f.settle(c2, ledger.Settlement{StatusCode: 201, Cost: usd("0.02"), CostState: ledger.CostUnpriced, VendorTxnID: "SM123", Now: at(4)})
	f.settle(c2, ledger.Settlement{StatusCode: 201, Cost: usd("0.0079"), VendorAmount: ptr(int64(79)), VendorCurrency: "usd", Now: at(90)})
	f.wantCall(f.call(k.ID, c2), ledger.Call{
		CallID: c2, KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe", Method: "POST",
		Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", StatusCode: 201,
		Outcome: ledger.OutcomeForwarded, Reserved: usd("0.02"), Cost: usd("0.0079"),
		VendorAmount: ptr(int64(79)), VendorCurrency: "usd", VendorTxnID: "SM123",
		CostState: ledger.CostSettled, StartedAt: at(3), FinishedAt: ptr(at(90)),
	})

	// A release records what the vendor said too (a declined charge has an id).
	c3 := f.reserve(k, usd("5"), at(5), ledger.OutcomeForwarded)
	f.release(c3, ledger.Settlement{StatusCode: 402, VendorTxnID: "pi_declined", VendorAmount: ptr(int64(500)), VendorCurrency: "usd", Now: at(6)})
	f.wantCall(f.call(k.ID, c3), ledger.Call{
		CallID: c3, KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe", Method: "POST",
		Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", StatusCode: 402,
		Outcome: ledger.OutcomeForwarded, Reserved: usd("5"), Cost: 0,
		VendorAmount: ptr(int64(500)), VendorCurrency: "usd", VendorTxnID: "pi_declined",
		CostState: ledger.CostReleased, StartedAt: at(5), FinishedAt: ptr(at(6)),
	})
}

func testSettleNotFoundAndRefused(f *fixture) {
	t := f.t
	s := ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: t0}
	wantErrIs(t, "Settle(unknown)", f.s.Settle(f.ctx, "callMissing", s), ledger.ErrNotFound)
	wantErrIs(t, "Release(unknown)", f.s.Release(f.ctx, "callMissing", s), ledger.ErrNotFound)
	wantErrIs(t, "MarkUnknown(unknown)", f.s.MarkUnknown(f.ctx, "callMissing", s), ledger.ErrNotFound)

	// A refused call holds nothing: settling it is a no-op, not an error.
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("1") })
	hit := f.reserve(k, usd("2"), t0, ledger.OutcomeCapHit)
	refusal := ledger.Call{CallID: "callRefused", KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe",
		Method: "GET", Path: "/v1/balance", Outcome: ledger.OutcomeEndpointDenied, StatusCode: 403, StartedAt: t0}
	if err := f.s.RecordRefusal(f.ctx, refusal); err != nil {
		t.Fatalf("RecordRefusal: %v", err)
	}
	for _, id := range []string{hit, refusal.CallID} {
		before := f.call(k.ID, id)
		f.settle(id, s)
		f.release(id, s)
		f.markUnknown(id, s)
		f.wantCall(f.call(k.ID, id), before)
	}
	f.wantUsage(k.ID, t0, usage{CapHits: 1})
}
