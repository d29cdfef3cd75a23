package ledgertest

import (
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// replayWindow is the vendor's idempotency window in these tests (Stripe's).
const replayWindow = 24 * time.Hour

// withIdem makes a request carry an idempotency key the vendor honours,
// with the request fingerprint fp.
func withIdem(key, fp string) func(r *ledger.ReserveRequest) {
	return func(r *ledger.ReserveRequest) {
		r.IdempotencyKey, r.Fingerprint, r.ReplayWindow = key, fp, replayWindow
	}
}

func testIdempotentReplay(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("10") })

	first := f.request(k, usd("10"), t0, withIdem("idemA", "fpA"))
	f.reserveReq(first, ledger.OutcomeForwarded) // the key is now at its cap

	// While the original is in flight the vendor refuses a replay itself
	// (Stripe: 409, retried by the SDK); Keybrake refuses it first.
	inFlight := f.request(k, usd("10"), t0.Add(time.Second), withIdem("idemA", "fpA"))
	if res := f.reserveReq(inFlight, ledger.OutcomeIdempotencyInFlight); res.Allowed() || res.ReplayOf != first.CallID {
		t.Fatalf("in flight: allowed=%v replayOf=%q", res.Allowed(), res.ReplayOf)
	}
	f.settle(first.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("10"), Now: t0.Add(2 * time.Second)})

	// Replays of a finished original go ahead at the cap, reserve nothing,
	// and name the original (never another replay).
	var replays []string
	for i := range 2 {
		r := f.request(k, usd("10"), t0.Add(time.Duration(i+3)*time.Second), withIdem("idemA", "fpA"))
		res := f.reserveReq(r, ledger.OutcomeIdempotentReplay)
		if !res.Allowed() || res.ReplayOf != first.CallID || res.Reserved != 0 || res.Remaining != 0 {
			t.Fatalf("replay %d: %+v; want allowed, of %q, nothing reserved or remaining", i, res, first.CallID)
		}
		replays = append(replays, r.CallID)
	}
	f.reserveReq(f.request(k, usd("1"), t0.Add(6*time.Second), withIdem("idemB", "fpB")), ledger.OutcomeCapHit)
	f.wantUsage(k.ID, t0, usage{Spent: usd("10"), DaySpent: usd("10"), Calls: 3, CapHits: 1})

	replay := f.call(k.ID, replays[0])
	if replay.Outcome != ledger.OutcomeIdempotentReplay || replay.ReplayOf != first.CallID ||
		replay.IdempotencyKey != "idemA" || replay.Reserved != 0 || replay.Cost != 0 {
		t.Fatalf("replay record = %+v", replay)
	}
	// Settling a replay with the same cost (the vendor's replayed response)
	// must not count it again.
	for _, id := range replays {
		f.settle(id, ledger.Settlement{StatusCode: 200, Cost: usd("10"), Now: t0.Add(7 * time.Second)})
	}
	f.wantUsage(k.ID, t0, usage{Spent: usd("10"), DaySpent: usd("10"), Calls: 3, CapHits: 1})

	// Idempotency keys belong to one vault key.
	other := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("10") })
	if res := f.reserveReq(f.request(other, usd("10"), t0, withIdem("idemA", "fpA")), ledger.OutcomeForwarded); res.ReplayOf != "" {
		t.Fatalf("other key: replayOf=%q; want none", res.ReplayOf)
	}

	// A refused call never reached the vendor, so a retry with its
	// idempotency key is a new call, not a replay; otherwise a retry after a
	// cap hit would be forwarded with nothing reserved.
	small := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("1") })
	f.reserveReq(f.request(small, usd("2"), t0, withIdem("idemC", "fpC")), ledger.OutcomeCapHit)
	retry := f.request(small, usd("1"), t0.Add(time.Second), withIdem("idemC", "fpC"))
	if res := f.reserveReq(retry, ledger.OutcomeForwarded); res.ReplayOf != "" {
		t.Fatalf("retry after cap hit: replayOf=%q; want none", res.ReplayOf)
	}
	f.settle(retry.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: t0.Add(time.Second)})
	if res := f.reserveReq(f.request(small, usd("1"), t0.Add(2*time.Second), withIdem("idemC", "fpC")), ledger.OutcomeIdempotentReplay); res.ReplayOf != retry.CallID {
		t.Fatalf("replay of retry: replayOf=%q; want %q", res.ReplayOf, retry.CallID)
	}

	// A released original (the vendor refused it; Stripe keeps no result
	// for a request that failed validation) and an unknown one (the vendor
	// may never have seen it) do not make a retry a replay: the retry may
	// really move money, so it is reserved anew.
	rel := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("5") })
	bad := f.request(rel, usd("5"), t0, withIdem("idemE", "fpE"))
	f.reserveReq(bad, ledger.OutcomeForwarded)
	f.release(bad.CallID, ledger.Settlement{StatusCode: 400, Now: t0})
	again := f.request(rel, usd("5"), t0.Add(time.Second), withIdem("idemE", "fpE"))
	if res := f.reserveReq(again, ledger.OutcomeForwarded); res.ReplayOf != "" {
		t.Fatalf("retry after release: replayOf=%q; want none", res.ReplayOf)
	}
	f.markUnknown(again.CallID, ledger.Settlement{StatusCode: 502, Now: t0})
	// The unknown call keeps its $5: a retry must reserve anew and so hits the cap.
	f.reserveReq(f.request(rel, usd("5"), t0.Add(2*time.Second), withIdem("idemE", "fpE")), ledger.OutcomeCapHit)

	// Revocation and expiry are checked before replay.
	rk := f.newKey(func(k *ledger.Key) { k.ExpiresAt = t0.Add(time.Hour) })
	orig := f.request(rk, usd("1"), t0, withIdem("idemD", "fpD"))
	f.reserveReq(orig, ledger.OutcomeForwarded)
	f.settle(orig.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: t0})
	f.reserveReq(f.request(rk, usd("1"), rk.ExpiresAt, withIdem("idemD", "fpD")), ledger.OutcomeExpired)
	if _, err := f.s.RevokeKey(f.ctx, rk.ID, t0.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	f.reserveReq(f.request(rk, usd("1"), t0.Add(2*time.Minute), withIdem("idemD", "fpD")), ledger.OutcomeRevoked)
}

// testIdempotencyMismatch: the same idempotency key with another request
// (another body, path, method or account) is refused, whatever it would
// cost and even at the cap; it reserves nothing and leaves the original the
// one a true replay names.
func testIdempotencyMismatch(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("2") })
	orig := f.request(k, usd("1"), t0, withIdem("k", "fpGet"))
	f.reserveReq(orig, ledger.OutcomeForwarded)
	f.settle(orig.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: t0})
	for i, est := range []string{"1000", "0", "1"} {
		r := f.request(k, usd(est), t0.Add(time.Duration(i+1)*time.Second), withIdem("k", "fpCharge"))
		res := f.reserveReq(r, ledger.OutcomeIdempotencyMismatch)
		if res.Allowed() || res.Reserved != 0 || res.ReplayOf != orig.CallID {
			t.Fatalf("mismatch %s: %+v", est, res)
		}
		c := f.call(k.ID, r.CallID)
		if c.StatusCode != 400 || c.CostState != ledger.CostNone || c.Reserved != 0 {
			t.Fatalf("mismatch record = %+v; want 400, no cost", c)
		}
	}
	f.reserveReq(f.request(k, usd("1"), t0.Add(time.Minute), withIdem("k", "fpGet")), ledger.OutcomeIdempotentReplay)
	f.wantUsage(k.ID, t0, usage{Spent: usd("1"), DaySpent: usd("1"), Calls: 2})

	// A call on which the vendor ignores the key (a GET: no fingerprint)
	// is no original: a later POST with the same key is priced as new.
	g := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("1") })
	get := f.request(g, 0, t0, func(r *ledger.ReserveRequest) { r.Method, r.IdempotencyKey = "GET", "k" })
	f.reserveReq(get, ledger.OutcomeForwarded)
	f.settle(get.CallID, ledger.Settlement{StatusCode: 200, Now: t0})
	f.reserveReq(f.request(g, usd("1000"), t0.Add(time.Second), withIdem("k", "fpCharge")), ledger.OutcomeCapHit)
	f.reserveReq(f.request(g, usd("1"), t0.Add(2*time.Second), withIdem("k", "fpCharge")), ledger.OutcomeForwarded)

	// Without a replay window (the vendor ignores the header: Twilio) the
	// key is only recorded: every call is priced.
	tw := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("2") })
	for i := range 3 {
		r := f.request(tw, usd("1"), t0.Add(time.Duration(i)*time.Second), func(r *ledger.ReserveRequest) {
			r.IdempotencyKey, r.Fingerprint = "same", "fp"
		})
		want := ledger.OutcomeForwarded
		if i == 2 {
			want = ledger.OutcomeCapHit
		}
		res := f.reserveReq(r, want)
		if res.ReplayOf != "" {
			t.Fatalf("no window: replayOf=%q", res.ReplayOf)
		}
		if i < 2 {
			f.settle(r.CallID, ledger.Settlement{StatusCode: 201, Cost: usd("1"), Now: r.Now})
			if c := f.call(tw.ID, r.CallID); c.IdempotencyKey != "same" {
				t.Fatalf("idempotency key not recorded: %+v", c)
			}
		}
	}
}

// testIdempotencyWindow: past the vendor's window the vendor may have
// forgotten the key, so a repeat is priced as a new call, and a mismatch is
// no longer refused.
func testIdempotencyWindow(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("3"); k.ExpiresAt = t0.Add(72 * time.Hour) })
	orig := f.request(k, usd("1"), t0, withIdem("w", "fp1"))
	f.reserveReq(orig, ledger.OutcomeForwarded)
	f.settle(orig.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: t0})
	f.reserveReq(f.request(k, usd("1"), t0.Add(replayWindow-time.Second), withIdem("w", "fp1")), ledger.OutcomeIdempotentReplay)
	later := f.request(k, usd("1"), t0.Add(replayWindow+time.Second), withIdem("w", "fp1"))
	if res := f.reserveReq(later, ledger.OutcomeForwarded); res.ReplayOf != "" || res.Reserved != usd("1") {
		f.t.Fatalf("past the window: %+v; want a new reservation", res)
	}
	f.settle(later.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: later.Now})
	// The later call is the original within its own window now.
	f.reserveReq(f.request(k, usd("1"), later.Now.Add(time.Minute), withIdem("w", "fp2")), ledger.OutcomeIdempotencyMismatch)
	f.reserveReq(f.request(k, usd("1"), later.Now.Add(replayWindow+time.Minute), withIdem("w", "fp2")), ledger.OutcomeForwarded)
}

// testReserveMinimum: with a minimum, a reservation shrinks to the
// tighter cap's headroom, never below the minimum.
func testReserveMinimum(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.TotalCap, k.DailyCap = capOf("10"), capOf("4") })
	withMin := func(m string) func(r *ledger.ReserveRequest) {
		return func(r *ledger.ReserveRequest) { r.Minimum = usd(m) }
	}
	res := f.reserveReq(f.request(k, usd("3"), t0, withMin("1")), ledger.OutcomeForwarded)
	if res.Reserved != usd("3") {
		t.Fatalf("fits whole: reserved %s; want 3", res.Reserved)
	}
	res = f.reserveReq(f.request(k, usd("240"), t0.Add(time.Second), withMin("0.5")), ledger.OutcomeForwarded)
	if res.Reserved != usd("1") || res.Remaining != 0 {
		t.Fatalf("shrunk: %+v; want 1 reserved (the daily headroom), 0 remaining", res)
	}
	f.reserveReq(f.request(k, usd("240"), t0.Add(2*time.Second), withMin("0.000001")), ledger.OutcomeCapHit)
	f.wantUsage(k.ID, t0, usage{Reserved: usd("4"), DayReserved: usd("4"), Calls: 2, CapHits: 1})
	// The next UTC day has daily headroom again; the total cap bounds it.
	next := t0.Add(24 * time.Hour)
	res = f.reserveReq(f.request(k, usd("240"), next, withMin("0.5")), ledger.OutcomeForwarded)
	if res.Reserved != usd("4") {
		t.Fatalf("next day: reserved %s; want 4", res.Reserved)
	}
	c := f.call(k.ID, f.auditAll(ledger.AuditFilter{KeyID: k.ID})[3].CallID)
	if c.Reserved != usd("4") {
		t.Fatalf("call record reserved %s; want 4", c.Reserved)
	}
	// A minimum above the headroom is a cap hit.
	f.reserveReq(f.request(k, usd("240"), next.Add(time.Second), withMin("2.5")), ledger.OutcomeCapHit)
}

// testObjectExposure: what a key has counted for a vendor object is what
// its calls on that object reserved or cost; a free call that merely saw
// the object counts nothing, and another key's calls do not count.
func testObjectExposure(f *fixture) {
	t := f.t
	k := f.newKey(nil)
	other := f.newKey(nil)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	exposure := func(key ledger.Key, obj string, want string) {
		t.Helper()
		got, err := f.s.ObjectExposure(f.ctx, key.ID, key.Vendor, obj)
		if err != nil {
			t.Fatalf("ObjectExposure(%s): %v", obj, err)
		}
		if got != usd(want) {
			t.Fatalf("ObjectExposure(%s, %s) = %s; want %s", key.ID, obj, got, want)
		}
	}
	// A free GET that returned pi_A: seen, not counted.
	get := f.request(k, 0, at(1), func(r *ledger.ReserveRequest) { r.Method, r.Path = "GET", "/v1/payment_intents/pi_A" })
	f.reserveReq(get, ledger.OutcomeForwarded)
	f.settle(get.CallID, ledger.Settlement{StatusCode: 200, VendorTxnID: "pi_A", Now: at(1)})
	exposure(k, "pi_A", "0")

	// A create priced at $10 and settled as pi_A.
	create := f.reserve(k, usd("10"), at(2), ledger.OutcomeForwarded)
	f.settle(create, ledger.Settlement{StatusCode: 200, Cost: usd("10"), VendorTxnID: "pi_A", Now: at(2)})
	exposure(k, "pi_A", "10")
	// A capture of pi_A in flight, named before forwarding, holding $2 more.
	capture := f.request(k, usd("2"), at(3), func(r *ledger.ReserveRequest) { r.Object = "pi_A" })
	f.reserveReq(capture, ledger.OutcomeForwarded)
	exposure(k, "pi_A", "12")
	f.markUnknown(capture.CallID, ledger.Settlement{StatusCode: 502, Now: at(3)})
	exposure(k, "pi_A", "12")
	f.release(capture.CallID, ledger.Settlement{StatusCode: 400, Now: at(4)})
	exposure(k, "pi_A", "10")
	// Unpriced costs count; refusals do not.
	up := f.request(k, usd("1"), at(5), func(r *ledger.ReserveRequest) { r.Object = "pi_A" })
	f.reserveReq(up, ledger.OutcomeForwarded)
	f.settle(up.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), CostState: ledger.CostUnpriced, Now: at(5)})
	exposure(k, "pi_A", "11")
	if err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: "callRefusedObj", KeyID: k.ID, Vendor: k.Vendor, Method: "POST",
		Path: "/v1/payment_intents/pi_A/capture", StatusCode: 403, Outcome: ledger.OutcomeUnknownCost,
		VendorTxnID: "pi_A", StartedAt: at(6)}); err != nil {
		t.Fatalf("RecordRefusal: %v", err)
	}
	exposure(k, "pi_A", "11")
	exposure(other, "pi_A", "0")
	exposure(k, "pi_none", "0")
	exposure(k, "", "0")
	// Another vendor's object of the same id is another object.
	tw := f.newKey(func(k *ledger.Key) { k.Vendor = "twilio" })
	exposure(tw, "pi_A", "0")
}
