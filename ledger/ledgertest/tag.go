package ledgertest

import (
	"context"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// tagged reserves r with tag and returns the tag recorded.
func (f *fixture) tagged(r ledger.ReserveRequest, tag, wantOutcome string) string {
	f.t.Helper()
	r.Tag = tag
	return f.reserveReq(r, wantOutcome).Tag
}

// testReserveTag: a call's tag is recorded with its reservation and read
// back with the call; an untagged call reads ""; a refused call records
// none; every attempt of one idempotent request (a retry after an unknown
// or released original, a replay) records the first attempt's tag, while
// another request, another idempotency key, another vault key or an
// attempt past the replay window records its own.
func testReserveTag(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("100") })

	plain := f.request(k, usd("1"), t0, nil)
	if got := f.tagged(plain, "tgPlain", ledger.OutcomeForwarded); got != "tgPlain" {
		t.Fatalf("tag = %q; want tgPlain", got)
	}
	untagged := f.reserve(k, usd("1"), t0, ledger.OutcomeForwarded)
	if c := f.call(k.ID, plain.CallID); c.Tag != "tgPlain" {
		t.Fatalf("call tag = %q; want tgPlain", c.Tag)
	}
	if c := f.call(k.ID, untagged); c.Tag != "" {
		t.Fatalf("untagged call tag = %q; want none", c.Tag)
	}
	capHit := f.request(k, usd("1000"), t0, nil)
	if got := f.tagged(capHit, "tgRefused", ledger.OutcomeCapHit); got != "" {
		t.Fatalf("a cap hit recorded the tag %q", got)
	}
	if c := f.call(k.ID, capHit.CallID); c.Tag != "" {
		t.Fatalf("a cap hit's call tag = %q; want none: nothing was forwarded", c.Tag)
	}

	first := f.request(k, usd("1"), t0, withIdem("idemT", "fpT"))
	if got := f.tagged(first, "tgFirst", ledger.OutcomeForwarded); got != "tgFirst" {
		t.Fatalf("first attempt tag = %q", got)
	}
	f.markUnknown(first.CallID, ledger.Settlement{StatusCode: 502, Now: t0.Add(time.Second)})
	// The retry of an unknown original is reserved anew, and sends the
	// vendor the original's body: its tag.
	retry := f.request(k, usd("1"), t0.Add(2*time.Second), withIdem("idemT", "fpT"))
	if got := f.tagged(retry, "tgRetry", ledger.OutcomeForwarded); got != "tgFirst" {
		t.Fatalf("retry tag = %q; want the first attempt's tgFirst", got)
	}
	f.settle(retry.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: t0.Add(3 * time.Second)})
	replay := f.request(k, usd("1"), t0.Add(4*time.Second), withIdem("idemT", "fpT"))
	if got := f.tagged(replay, "tgReplay", ledger.OutcomeIdempotentReplay); got != "tgFirst" {
		t.Fatalf("replay tag = %q; want tgFirst", got)
	}
	if c := f.call(k.ID, retry.CallID); c.Tag != "tgFirst" {
		t.Fatalf("retry's recorded tag = %q", c.Tag)
	}

	// A released first attempt makes no original: another request under
	// its idempotency key goes ahead, and is another request to tag.
	released := f.request(k, usd("1"), t0, withIdem("idemV", "fpV1"))
	f.tagged(released, "tgReleased", ledger.OutcomeForwarded)
	f.release(released.CallID, ledger.Settlement{StatusCode: 400, Now: t0.Add(time.Second)})

	other := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("100") })
	for name, r := range map[string]ledger.ReserveRequest{
		"another request":         f.request(k, usd("1"), t0.Add(5*time.Second), withIdem("idemV", "fpV2")),
		"another idempotency key": f.request(k, usd("1"), t0.Add(5*time.Second), withIdem("idemU", "fpT")),
		"another vault key":       f.request(other, usd("1"), t0.Add(5*time.Second), withIdem("idemT", "fpT")),
		"past the window":         f.request(k, usd("1"), t0.Add(replayWindow+time.Hour), withIdem("idemT", "fpT")),
		"no idempotency key":      f.request(k, usd("1"), t0.Add(5*time.Second), nil),
	} {
		r.Tag = "tgOwn"
		res, err := f.s.Reserve(context.Background(), r)
		if err != nil || !res.Allowed() || res.Tag != "tgOwn" {
			t.Fatalf("%s: reserve %+v, %v; want it allowed with its own tag", name, res, err)
		}
	}
}
