package ledgertest

import (
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func testReserveUnknownKey(f *fixture) {
	k := f.newKey(nil)
	r := f.request(k, usd("1"), t0, func(r *ledger.ReserveRequest) { r.KeyID = "vkMissing" })
	_, err := f.s.Reserve(f.ctx, r)
	wantErrIs(f.t, "Reserve(unknown key)", err, ledger.ErrNotFound)
	if calls := f.auditAll(ledger.AuditFilter{}); len(calls) != 0 {
		f.t.Fatalf("a failed Reserve recorded %d calls", len(calls))
	}
	f.wantUsage(k.ID, t0, usage{})
}

// testReserveRefusalOrder checks that the refusals are decided in the order
// vendor, revocation, expiry, cap: each case below also fails every later
// check, and must report the earliest.
func testReserveRefusalOrder(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) {
		k.TotalCap, k.ExpiresAt, k.RunLabel = capOf("10"), t0.Add(time.Hour), "run/order"
	})
	f.reserve(k, usd("10"), t0, ledger.OutcomeForwarded) // now at the cap
	if _, err := f.s.RevokeKey(f.ctx, k.ID, t0.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	late := t0.Add(2 * time.Hour) // also expired

	res := f.reserveReq(f.request(k, usd("1"), late, func(r *ledger.ReserveRequest) { r.Vendor = "twilio" }),
		ledger.OutcomeWrongVendor)
	if res.Allowed() || res.RunLabel != "run/order" {
		t.Fatalf("wrong vendor: allowed=%v run label %q", res.Allowed(), res.RunLabel)
	}
	res = f.reserveReq(f.request(k, usd("1"), late, nil), ledger.OutcomeRevoked)
	if res.Allowed() || res.RunLabel != "run/order" {
		t.Fatalf("revoked: allowed=%v run label %q", res.Allowed(), res.RunLabel)
	}

	// Expiry is exact: at ExpiresAt the key is expired, a microsecond before
	// it is not (and this full key then hits its cap).
	k2 := f.newKey(func(k *ledger.Key) { k.TotalCap, k.ExpiresAt = capOf("10"), t0.Add(time.Hour) })
	f.reserve(k2, usd("10"), t0, ledger.OutcomeForwarded)
	res = f.reserveReq(f.request(k2, usd("1"), k2.ExpiresAt, nil), ledger.OutcomeExpired)
	if res.Allowed() {
		t.Fatal("expired call allowed")
	}
	f.reserve(k2, usd("1"), k2.ExpiresAt.Add(-time.Microsecond), ledger.OutcomeCapHit)
	f.reserve(k2, usd("1"), k2.ExpiresAt.Add(time.Hour), ledger.OutcomeExpired)

	// An unexpired key with room goes ahead a microsecond before expiry.
	k3 := f.newKey(func(k *ledger.Key) { k.ExpiresAt = t0.Add(time.Hour) })
	res = f.reserveReq(f.request(k3, usd("1"), k3.ExpiresAt.Add(-time.Microsecond), nil), ledger.OutcomeForwarded)
	if !res.Allowed() || res.ReplayOf != "" {
		t.Fatalf("forwarded: allowed=%v replayOf=%q", res.Allowed(), res.ReplayOf)
	}
}

func testRefusalsAreRecorded(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.TotalCap, k.RunLabel = capOf("1"), "run/refused" })
	reqs := []struct {
		r       ledger.ReserveRequest
		outcome string
	}{
		{f.request(k, usd("2"), t0.Add(1*time.Second), func(r *ledger.ReserveRequest) { r.IdempotencyKey = "idemX" }), ledger.OutcomeCapHit},
		{f.request(k, usd("1"), t0.Add(2*time.Second), func(r *ledger.ReserveRequest) {
			r.Vendor, r.Method, r.Path, r.Endpoint = "twilio", "GET", "/2010-04-01/Accounts", "GET /2010-04-01/Accounts"
		}), ledger.OutcomeWrongVendor},
	}
	for _, q := range reqs {
		f.reserveReq(q.r, q.outcome)
	}
	if _, err := f.s.RevokeKey(f.ctx, k.ID, t0.Add(3*time.Second)); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	revoked := f.request(k, usd("1"), t0.Add(4*time.Second), nil)
	f.reserveReq(revoked, ledger.OutcomeRevoked)
	reqs = append(reqs, struct {
		r       ledger.ReserveRequest
		outcome string
	}{revoked, ledger.OutcomeRevoked})

	ek := f.newKey(func(k *ledger.Key) { k.ExpiresAt, k.RunLabel = t0.Add(time.Hour), "run/refused" })
	expired := f.request(ek, usd("1"), ek.ExpiresAt, nil)
	f.reserveReq(expired, ledger.OutcomeExpired)
	reqs = append(reqs, struct {
		r       ledger.ReserveRequest
		outcome string
	}{expired, ledger.OutcomeExpired})

	calls := f.auditAll(ledger.AuditFilter{RunLabel: "run/refused"})
	if len(calls) != len(reqs) {
		t.Fatalf("audit has %d calls; want %d refusals", len(calls), len(reqs))
	}
	for i, q := range reqs {
		got := calls[i]
		want := ledger.Call{
			CallID: q.r.CallID, KeyID: q.r.KeyID, RunLabel: "run/refused", Vendor: q.r.Vendor,
			Method: q.r.Method, Path: q.r.Path, Endpoint: q.r.Endpoint, Outcome: q.outcome,
			IdempotencyKey: q.r.IdempotencyKey, CostState: ledger.CostNone, StartedAt: q.r.Now,
		}
		// Reserve has no status code or finish time to give a refusal, and
		// which vendor a wrong-vendor call is filed under is the backend's
		// choice: those are not part of the contract.
		want.StatusCode, want.FinishedAt = got.StatusCode, got.FinishedAt
		if q.outcome == ledger.OutcomeWrongVendor {
			want.Vendor = got.Vendor
		}
		f.wantCall(got, want)
	}
	// Refusals are not forwarded calls; only the cap hit is counted.
	f.wantUsage(k.ID, t0, usage{CapHits: 1})
	f.wantUsage(ek.ID, t0, usage{})
}

func testReserveRemaining(f *fixture) {
	t := f.t
	check := func(k ledger.Key, estimate string, outcome string, want string) {
		t.Helper()
		res := f.reserveReq(f.request(k, usd(estimate), t0, nil), outcome)
		if res.Remaining != usd(want) {
			t.Fatalf("reserve %s: remaining = %s; want %s", estimate, res.Remaining, usd(want))
		}
	}
	lifetime := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("10") })
	check(lifetime, "3", ledger.OutcomeForwarded, "7")
	check(lifetime, "7.5", ledger.OutcomeCapHit, "7") // on a cap hit: without it
	check(lifetime, "6.999999", ledger.OutcomeForwarded, "0.000001")
	check(lifetime, "0.000001", ledger.OutcomeForwarded, "0")
	check(lifetime, "0.000001", ledger.OutcomeCapHit, "0")

	// The tighter of the two caps.
	both := f.newKey(func(k *ledger.Key) { k.DailyCap, k.TotalCap = capOf("5"), capOf("100") })
	check(both, "2", ledger.OutcomeForwarded, "3")
	both2 := f.newKey(func(k *ledger.Key) { k.DailyCap, k.TotalCap = capOf("50"), capOf("4") })
	check(both2, "2", ledger.OutcomeForwarded, "2")
}
