package ledgertest

import (
	"errors"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// batcher returns the store's group commit, skipping the test for a store
// without one.
func (f *fixture) batcher() ledger.Batcher {
	b, ok := f.s.(ledger.Batcher)
	if !ok {
		f.t.Skip("the store writes no batches")
	}
	return b
}

// writeBatch writes ops in one batch and returns the per-op results.
func (f *fixture) writeBatch(ops []ledger.Op) ([]ledger.ReserveResult, []error) {
	f.t.Helper()
	res, errs := f.batcher().WriteBatch(f.ctx, ops)
	if len(res) != len(ops) || len(errs) != len(ops) {
		f.t.Fatalf("WriteBatch of %d ops returned %d results and %d errors", len(ops), len(res), len(errs))
	}
	return res, errs
}

func reserveOp(r ledger.ReserveRequest) ledger.Op { return ledger.Op{Reserve: &r} }

func finishOp(callID string, mode ledger.FinishMode, s ledger.Settlement) ledger.Op {
	return ledger.Op{Finish: &ledger.Finish{CallID: callID, Mode: mode, Settlement: s}}
}

// wantOutcomes checks each op's outcome ("" for a finish that succeeded,
// "error" for an op that failed).
func (f *fixture) wantOutcomes(res []ledger.ReserveResult, errs []error, want []string) {
	f.t.Helper()
	got := make([]string, len(res))
	for i := range res {
		switch {
		case errs[i] != nil:
			got[i] = "error"
		default:
			got[i] = res[i].Outcome
		}
	}
	f.wantIDs("outcomes of the batch", got, want)
}

// testBatchMixedKeys: one batch with calls of two keys interleaved, a
// zero-cost call and a call of a key that does not exist. Each key's calls
// are decided in arrival order against its own cap; the unknown key fails
// alone; the counters are as if the calls had come one by one.
func testBatchMixedKeys(f *fixture) {
	a := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("10") })
	b := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("10") })
	now := t0.Add(time.Minute)
	ops := []ledger.Op{
		reserveOp(f.request(a, usd("4"), now, nil)),
		reserveOp(f.request(b, usd("6"), now, nil)),
		reserveOp(f.request(a, usd("4"), now, nil)),
		reserveOp(f.request(ledger.Key{ID: "vkNoSuchKey", Vendor: "stripe"}, usd("1"), now, nil)),
		reserveOp(f.request(a, usd("4"), now, nil)), // 4+4+4 > 10
		reserveOp(f.request(b, usd("4"), now, nil)), // 6+4 = 10: the cap exactly
		reserveOp(f.request(a, 0, now, func(r *ledger.ReserveRequest) {
			r.Method, r.Path, r.Endpoint = "GET", "/v1/customers/cus_1", "GET /v1/customers/*"
		})),
	}
	res, errs := f.writeBatch(ops)
	f.wantOutcomes(res, errs, []string{ledger.OutcomeForwarded, ledger.OutcomeForwarded, ledger.OutcomeForwarded, "error",
		ledger.OutcomeCapHit, ledger.OutcomeForwarded, ledger.OutcomeForwarded})
	if !errors.Is(errs[3], ledger.ErrNotFound) {
		f.t.Fatalf("unknown key in a batch: %v; want ErrNotFound", errs[3])
	}
	if res[0].Remaining != usd("6") || res[2].Remaining != usd("2") || res[4].Remaining != usd("2") || res[5].Remaining != 0 {
		f.t.Fatalf("remaining = %s, %s, %s, %s; want 6, 2, 2 (cap hit) and 0", res[0].Remaining, res[2].Remaining, res[4].Remaining, res[5].Remaining)
	}
	f.wantUsage(a.ID, now, usage{Reserved: usd("8"), DayReserved: usd("8"), Calls: 3, CapHits: 1})
	f.wantUsage(b.ID, now, usage{Reserved: usd("10"), DayReserved: usd("10"), Calls: 2})
}

// testBatchHotKey: every call of one batch on one key, which fits exactly
// 7 of the 20: the first 7 in arrival order go, the rest are cap hits, and
// the reservations add up to the cap to the micro-dollar.
func testBatchHotKey(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("7.7") })
	now := t0.Add(time.Minute)
	var ops []ledger.Op
	want := make([]string, 20)
	for i := range want {
		ops = append(ops, reserveOp(f.request(k, usd("1.1"), now, nil)))
		want[i] = ledger.OutcomeCapHit
		if i < 7 {
			want[i] = ledger.OutcomeForwarded
		}
	}
	res, errs := f.writeBatch(ops)
	f.wantOutcomes(res, errs, want)
	f.wantUsage(k.ID, now, usage{Reserved: usd("7.7"), DayReserved: usd("7.7"), Calls: 7, CapHits: 13})
	f.wantSummary(k.RunLabel, 7, 13, 0, usd("7.7"))
}

// testBatchBadOp: ops the ledger refuses (a finish of a call that does not
// exist, a negative estimate, a cost state Settle does not take, a call id
// that exists already) fail alone; the batch's other ops commit. A path
// that is not UTF-8 is refused by one database and kept by another: either
// way the others commit.
func testBatchBadOp(f *fixture) {
	k := f.newKey(nil)
	now := t0.Add(time.Minute)
	held := f.reserve(k, usd("3"), now, ledger.OutcomeForwarded)
	ops := []ledger.Op{
		reserveOp(f.request(k, usd("2"), now, nil)),
		finishOp("callNoSuchCall", ledger.FinishSettle, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: now}),
		reserveOp(f.request(k, -usd("1"), now, nil)),
		finishOp(held, ledger.FinishSettle, ledger.Settlement{StatusCode: 200, Cost: usd("1"), CostState: ledger.CostReleased, Now: now}),
		finishOp(held, ledger.FinishSettle, ledger.Settlement{StatusCode: 200, Cost: usd("2.5"), Now: now}),
		reserveOp(f.request(k, usd("4"), now, nil)),
		reserveOp(f.request(k, usd("1"), now, func(r *ledger.ReserveRequest) { r.CallID = held })),
		reserveOp(f.request(k, 0, now, func(r *ledger.ReserveRequest) {
			r.Method, r.Path, r.Endpoint = "GET", "/v1/customers/cus_\xff", "GET /v1/customers/*"
		})),
	}
	res, errs := f.writeBatch(ops)
	calls := int64(3)
	utf8Outcome := "error"
	if errs[7] == nil {
		utf8Outcome = ledger.OutcomeForwarded
		calls++
	}
	f.wantOutcomes(res, errs, []string{ledger.OutcomeForwarded, "error", "error", "error", "", ledger.OutcomeForwarded, "error", utf8Outcome})
	if !errors.Is(errs[1], ledger.ErrNotFound) {
		f.t.Fatalf("finish of an unknown call in a batch: %v; want ErrNotFound", errs[1])
	}
	if !errors.Is(errs[6], ledger.ErrConflict) {
		f.t.Fatalf("a call id reused in a batch: %v; want ErrConflict", errs[6])
	}
	f.wantUsage(k.ID, now, usage{Spent: usd("2.5"), DaySpent: usd("2.5"), Reserved: usd("6"), DayReserved: usd("6"), Calls: calls})
	if c := f.call(k.ID, held); c.CostState != ledger.CostSettled || c.Cost != usd("2.5") {
		f.t.Fatalf("settled call = %+v", c)
	}
}

// testBatchFinishesFirst: a batch holding the settlement of an original
// and, queued after it, the client's retry with the same idempotency key:
// the retry sees its original settled (a free replay, not "in flight"),
// and a release in the same batch makes room for a reservation queued
// with it.
func testBatchFinishesFirst(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("10") })
	now := t0.Add(time.Minute)
	orig := f.request(k, usd("6"), now, withIdem("idemBatch", "fpBatch"))
	f.reserveReq(orig, ledger.OutcomeForwarded)
	other := f.reserve(k, usd("4"), now, ledger.OutcomeForwarded) // the key is at its cap
	ops := []ledger.Op{
		reserveOp(f.request(k, usd("6"), now.Add(time.Second), withIdem("idemBatch", "fpBatch"))),
		reserveOp(f.request(k, usd("4"), now.Add(time.Second), nil)),
		finishOp(orig.CallID, ledger.FinishSettle, ledger.Settlement{StatusCode: 200, Cost: usd("6"), Now: now.Add(time.Second)}),
		finishOp(other, ledger.FinishRelease, ledger.Settlement{StatusCode: 400, Now: now.Add(time.Second)}),
	}
	res, errs := f.writeBatch(ops)
	f.wantOutcomes(res, errs, []string{ledger.OutcomeIdempotentReplay, ledger.OutcomeForwarded, "", ""})
	if res[0].ReplayOf != orig.CallID {
		f.t.Fatalf("replay of %q; want %q", res[0].ReplayOf, orig.CallID)
	}
	f.wantUsage(k.ID, now, usage{Spent: usd("6"), DaySpent: usd("6"), Reserved: usd("4"), DayReserved: usd("4"), Calls: 4})
}

// testBatchQueued: Reserve and FinishLater from many goroutines at once go
// through the group commit; what they wrote is all there once Settled
// returns, and the counts say how many batches it took.
func testBatchQueued(f *fixture) {
	b := f.batcher()
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("50") })
	now := t0.Add(time.Minute)
	before := b.BatchStats()
	reqs := make([]ledger.ReserveRequest, 100)
	for i := range reqs {
		reqs[i] = f.request(k, usd("1"), now, func(r *ledger.ReserveRequest) { r.CallID = fmt.Sprintf("queued%04d", i) })
	}
	res := f.raceReserve(reqs)
	if res.forwarded != 50 || res.capHits != 50 {
		f.t.Fatalf("forwarded %d, cap hits %d; want 50 each", res.forwarded, res.capHits)
	}
	failed := make(chan error, len(res.forwardedIDs))
	for _, id := range res.forwardedIDs {
		b.FinishLater(f.ctx, ledger.Finish{CallID: id, Mode: ledger.FinishSettle, Settlement: ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: now}},
			func(err error) {
				if err != nil {
					failed <- err
				}
			})
	}
	if err := b.Settled(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	close(failed)
	for err := range failed {
		f.t.Fatalf("FinishLater: %v", err)
	}
	f.wantUsage(k.ID, now, usage{Spent: usd("50"), DaySpent: usd("50"), Calls: 50, CapHits: 50})
	after := b.BatchStats()
	if ops := (after.Reserves - before.Reserves) + (after.Finishes - before.Finishes); ops != 150 || after.Batches <= before.Batches {
		f.t.Fatalf("batch counts went from %+v to %+v; want 150 ops more, in at least one batch", before, after)
	}
	f.t.Logf("150 ops in %d batches", after.Batches-before.Batches)
}
