package ledgertest

import (
	"errors"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func (f *fixture) resolve(callID string, res ledger.Resolution) ledger.Call {
	f.t.Helper()
	c, err := f.s.Resolve(f.ctx, callID, res)
	if err != nil {
		f.t.Fatalf("Resolve(%s): %v", callID, err)
	}
	return c
}

// testResolveSettleAndRelease: an unknown call resolved at a cost moves
// its reservation to spent, even a cost above the reservation; one
// resolved as released gives it back; each records who, when and why, in
// the answer and in the audit.
func testResolveSettleAndRelease(f *fixture) {
	k := f.newKey(nil)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	c1 := f.reserve(k, usd("10"), at(1), ledger.OutcomeForwarded)
	f.markUnknown(c1, ledger.Settlement{StatusCode: 502, Outcome: ledger.OutcomeUpstreamError, Now: at(2)})
	c2 := f.reserve(k, usd("20"), at(3), ledger.OutcomeForwarded)
	f.markUnknown(c2, ledger.Settlement{Now: at(4)})
	f.wantUsage(k.ID, at(5), usage{Reserved: usd("30"), DayReserved: usd("30"), Calls: 2})

	got := f.resolve(c1, ledger.Resolution{Cost: usd("12.5"), VendorTxnID: "pi_found", By: "tkAdmin", Reason: "seen in the dashboard", Now: at(10)})
	if got.CostState != ledger.CostSettled || got.Cost != usd("12.5") || got.VendorTxnID != "pi_found" ||
		got.ResolvedBy != "tkAdmin" || got.ResolveReason != "seen in the dashboard" ||
		got.ResolvedAt == nil || !got.ResolvedAt.Equal(at(10)) || got.Outcome != ledger.OutcomeUpstreamError || got.StatusCode != 502 {
		f.t.Fatalf("resolved call = %+v", got)
	}
	f.wantUsage(k.ID, at(11), usage{Spent: usd("12.5"), Reserved: usd("20"), DaySpent: usd("12.5"), DayReserved: usd("20"), Calls: 2})

	got = f.resolve(c2, ledger.Resolution{Release: true, By: "reconciler", Reason: "stripe: no object", Now: at(12)})
	if got.CostState != ledger.CostReleased || got.Cost != 0 || got.ResolvedBy != "reconciler" {
		f.t.Fatalf("released call = %+v", got)
	}
	f.wantUsage(k.ID, at(13), usage{Spent: usd("12.5"), DaySpent: usd("12.5"), Calls: 2})
	if a := f.call(k.ID, c1); a.ResolvedBy != "tkAdmin" || a.ResolveReason != "seen in the dashboard" || a.ResolvedAt == nil {
		f.t.Fatalf("audit of the resolved call = %+v", a)
	}
	if a := f.call(k.ID, c2); a.ResolvedBy != "reconciler" || a.CostState != ledger.CostReleased {
		f.t.Fatalf("audit of the released call = %+v", a)
	}
}

// testResolveOnlyUnresolved: only unknown calls, and reservations older
// than StaleBefore, can be resolved; anything else (in flight, settled,
// already resolved, refused) is ErrNotResolvable and changes nothing.
func testResolveOnlyUnresolved(f *fixture) {
	k := f.newKey(nil)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	inFlight := f.reserve(k, usd("5"), at(1), ledger.OutcomeForwarded)
	settled := f.reserve(k, usd("5"), at(1), ledger.OutcomeForwarded)
	f.settle(settled, ledger.Settlement{StatusCode: 200, Cost: usd("5"), Now: at(2)})
	unknown := f.reserve(k, usd("5"), at(1), ledger.OutcomeForwarded)
	f.markUnknown(unknown, ledger.Settlement{Now: at(2)})
	f.resolve(unknown, ledger.Resolution{Release: true, By: "tkA", Reason: "first", Now: at(3)})

	for name, id := range map[string]string{"in flight": inFlight, "settled": settled, "resolved twice": unknown} {
		_, err := f.s.Resolve(f.ctx, id, ledger.Resolution{Cost: usd("5"), By: "tkB", Reason: "again", StaleBefore: at(1), Now: at(4)})
		if !errors.Is(err, ledger.ErrNotResolvable) {
			f.t.Fatalf("%s: Resolve = %v; want ErrNotResolvable", name, err)
		}
	}
	if _, err := f.s.Resolve(f.ctx, "callNoSuch", ledger.Resolution{Release: true, Now: at(4)}); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("unknown call: Resolve = %v; want ErrNotFound", err)
	}
	if c := f.call(k.ID, unknown); c.ResolvedBy != "tkA" || c.ResolveReason != "first" {
		f.t.Fatalf("a refused second resolution changed the call: %+v", c)
	}
	f.wantUsage(k.ID, at(5), usage{Spent: usd("5"), Reserved: usd("5"), DaySpent: usd("5"), DayReserved: usd("5"), Calls: 3})

	// The reservation still in flight becomes resolvable once it is stale.
	got := f.resolve(inFlight, ledger.Resolution{Cost: usd("5"), By: "tkA", Reason: "node died", StaleBefore: at(2), Now: at(6)})
	if got.CostState != ledger.CostSettled {
		f.t.Fatalf("stale reservation resolved = %+v", got)
	}
	f.wantUsage(k.ID, at(7), usage{Spent: usd("10"), DaySpent: usd("10"), Calls: 3})
}
