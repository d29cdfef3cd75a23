package ledgertest

import (
	"context"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// tagCall records tag on a call and returns the tag recorded.
func (f *fixture) tagCall(callID, tag string) string {
	f.t.Helper()
	got, err := f.s.TagCall(context.Background(), callID, tag, replayWindow)
	if err != nil {
		f.t.Fatalf("TagCall(%s, %s): %v", callID, tag, err)
	}
	return got
}

// testTagCall: a call's tag is recorded as given and read back with the
// call; an untagged call reads ""; every attempt of one idempotent request
// (a retry after an unknown or released original, a replay) gets the first
// attempt's tag, while another request, another idempotency key, another
// vault key or an attempt past the replay window gets its own.
func testTagCall(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("100") })

	plain := f.reserve(k, usd("1"), t0, ledger.OutcomeForwarded)
	untagged := f.reserve(k, usd("1"), t0, ledger.OutcomeForwarded)
	if got := f.tagCall(plain, "tgPlain"); got != "tgPlain" {
		t.Fatalf("tag = %q; want tgPlain", got)
	}
	if c := f.call(k.ID, plain); c.Tag != "tgPlain" {
		t.Fatalf("call tag = %q; want tgPlain", c.Tag)
	}
	if c := f.call(k.ID, untagged); c.Tag != "" {
		t.Fatalf("untagged call tag = %q; want none", c.Tag)
	}

	first := f.request(k, usd("1"), t0, withIdem("idemT", "fpT"))
	f.reserveReq(first, ledger.OutcomeForwarded)
	if got := f.tagCall(first.CallID, "tgFirst"); got != "tgFirst" {
		t.Fatalf("first attempt tag = %q", got)
	}
	f.markUnknown(first.CallID, ledger.Settlement{StatusCode: 502, Now: t0.Add(time.Second)})
	// The retry of an unknown original is reserved anew, and sends the
	// vendor the original's body: its tag.
	retry := f.request(k, usd("1"), t0.Add(2*time.Second), withIdem("idemT", "fpT"))
	f.reserveReq(retry, ledger.OutcomeForwarded)
	if got := f.tagCall(retry.CallID, "tgRetry"); got != "tgFirst" {
		t.Fatalf("retry tag = %q; want the first attempt's tgFirst", got)
	}
	f.settle(retry.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: t0.Add(3 * time.Second)})
	replay := f.request(k, usd("1"), t0.Add(4*time.Second), withIdem("idemT", "fpT"))
	f.reserveReq(replay, ledger.OutcomeIdempotentReplay)
	if got := f.tagCall(replay.CallID, "tgReplay"); got != "tgFirst" {
		t.Fatalf("replay tag = %q; want tgFirst", got)
	}
	if c := f.call(k.ID, retry.CallID); c.Tag != "tgFirst" {
		t.Fatalf("retry's recorded tag = %q", c.Tag)
	}

	// A released first attempt makes no original: another request under
	// its idempotency key goes ahead, and is another request to tag.
	released := f.request(k, usd("1"), t0, withIdem("idemV", "fpV1"))
	f.reserveReq(released, ledger.OutcomeForwarded)
	f.tagCall(released.CallID, "tgReleased")
	f.release(released.CallID, ledger.Settlement{StatusCode: 400, Now: t0.Add(time.Second)})

	other := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("100") })
	for name, r := range map[string]ledger.ReserveRequest{
		"another request":         f.request(k, usd("1"), t0.Add(5*time.Second), withIdem("idemV", "fpV2")),
		"another idempotency key": f.request(k, usd("1"), t0.Add(5*time.Second), withIdem("idemU", "fpT")),
		"another vault key":       f.request(other, usd("1"), t0.Add(5*time.Second), withIdem("idemT", "fpT")),
		"past the window":         f.request(k, usd("1"), t0.Add(replayWindow+time.Hour), withIdem("idemT", "fpT")),
		"no idempotency key":      f.request(k, usd("1"), t0.Add(5*time.Second), nil),
	} {
		res, err := f.s.Reserve(context.Background(), r)
		if err != nil || !res.Allowed() {
			t.Fatalf("%s: reserve %+v, %v", name, res, err)
		}
		if got := f.tagCall(r.CallID, "tgOwn"); got != "tgOwn" {
			t.Fatalf("%s: tag = %q; want its own", name, got)
		}
	}

	_, err := f.s.TagCall(context.Background(), "clNoSuchCall", "tgX", replayWindow)
	wantErrIs(t, "TagCall of no call", err, ledger.ErrNotFound)
}
