package ledgertest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func testCreateAndGet(f *fixture) {
	t := f.t
	want := f.newKey(func(k *ledger.Key) {
		k.DailyCap = capOf("50")
		k.TotalCap = capOf("200.000001")
		k.AllowedEndpoints = []string{"POST /v1/payment_intents", "GET /v1/customers/*"}
		k.RunLabel = "windmill/0193abc"
		k.Metadata = json.RawMessage(`{"flow":"refunds","attempt":2,"tags":["a","b"]}`)
		k.ExpiresAt = t0.Add(2 * time.Hour)
	})

	ku := f.getKey(want.ID, t0.Add(time.Minute))
	if d := keyDiff(ku.Key, want); d != "" {
		t.Fatalf("GetKey:\n%s", d)
	}
	if got := (usage{ku.Spent, ku.Reserved, ku.DaySpent, ku.DayReserved, ku.Calls, ku.CapHits}); got != (usage{}) {
		t.Fatalf("new key usage = %v; want all zero", got)
	}
	if s := ku.Status(t0.Add(time.Minute)); s != ledger.StatusActive {
		t.Fatalf("status = %q; want active", s)
	}

	byHash, err := f.s.KeyByHash(f.ctx, want.Hash)
	if err != nil {
		t.Fatalf("KeyByHash: %v", err)
	}
	if d := keyDiff(byHash, want); d != "" {
		t.Fatalf("KeyByHash:\n%s", d)
	}

	// Only the lifetime cap, and no metadata.
	lifetimeOnly := f.newKey(func(k *ledger.Key) { k.DailyCap, k.Metadata = nil, nil })
	if d := keyDiff(f.getKey(lifetimeOnly.ID, t0).Key, lifetimeOnly); d != "" {
		t.Fatalf("GetKey(lifetime only):\n%s", d)
	}
	// Only the daily cap.
	dailyOnly := f.newKey(func(k *ledger.Key) { k.DailyCap, k.TotalCap = capOf("5"), nil })
	if d := keyDiff(f.getKey(dailyOnly.ID, t0).Key, dailyOnly); d != "" {
		t.Fatalf("GetKey(daily only):\n%s", d)
	}

	_, err = f.s.KeyByHash(f.ctx, ledger.HashSecret("no such secret"))
	wantErrIs(t, "KeyByHash(unknown)", err, ledger.ErrNotFound)
	_, err = f.s.GetKey(f.ctx, "vkMissing", t0)
	wantErrIs(t, "GetKey(unknown)", err, ledger.ErrNotFound)
}

func testCreateKeyConflict(f *fixture) {
	t := f.t
	orig := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/orig" })

	sameID := orig
	sameID.Hash = ledger.HashSecret("another secret")
	sameID.RunLabel = "run/impostor"
	wantErrIs(t, "CreateKey(same id)", f.s.CreateKey(f.ctx, sameID), ledger.ErrConflict)

	sameHash := orig
	sameHash.ID = "vkOtherId"
	sameHash.RunLabel = "run/impostor"
	wantErrIs(t, "CreateKey(same hash)", f.s.CreateKey(f.ctx, sameHash), ledger.ErrConflict)

	// Neither attempt changed or added anything.
	if d := keyDiff(f.getKey(orig.ID, t0).Key, orig); d != "" {
		t.Fatalf("original key changed:\n%s", d)
	}
	_, err := f.s.GetKey(f.ctx, "vkOtherId", t0)
	wantErrIs(t, "GetKey(refused id)", err, ledger.ErrNotFound)
}

func testRevokeKey(f *fixture) {
	t := f.t
	k := f.newKey(nil)
	first := t0.Add(10 * time.Minute)

	got, err := f.s.RevokeKey(f.ctx, k.ID, first)
	if err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	want := k
	want.RevokedAt = &first
	if d := keyDiff(got, want); d != "" {
		t.Fatalf("RevokeKey result:\n%s", d)
	}

	// A second revocation keeps the first time.
	got, err = f.s.RevokeKey(f.ctx, k.ID, first.Add(time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey again: %v", err)
	}
	if d := keyDiff(got, want); d != "" {
		t.Fatalf("second RevokeKey result:\n%s", d)
	}
	ku := f.getKey(k.ID, first.Add(2*time.Hour))
	if d := keyDiff(ku.Key, want); d != "" {
		t.Fatalf("GetKey after revoke:\n%s", d)
	}
	if s := ku.Status(first.Add(2 * time.Hour)); s != ledger.StatusRevoked {
		t.Fatalf("status = %q; want revoked", s)
	}
	byHash, err := f.s.KeyByHash(f.ctx, k.Hash)
	if err != nil {
		t.Fatalf("KeyByHash: %v", err)
	}
	if d := keyDiff(byHash, want); d != "" {
		t.Fatalf("KeyByHash after revoke:\n%s", d)
	}

	_, err = f.s.RevokeKey(f.ctx, "vkMissing", first)
	wantErrIs(t, "RevokeKey(unknown)", err, ledger.ErrNotFound)
}

func testListKeysFilters(f *fixture) {
	now := t0.Add(time.Hour)
	// Created one second apart so "newest first" is unambiguous.
	mk := func(i int, run, vendor string, expires time.Time) ledger.Key {
		return f.newKey(func(k *ledger.Key) {
			k.RunLabel, k.Vendor, k.ExpiresAt = run, vendor, expires
			k.CreatedAt = t0.Add(time.Duration(i) * time.Second)
		})
	}
	later := now.Add(time.Hour)
	aStripe := mk(1, "run/a", "stripe", later)
	aTwilio := mk(2, "run/a", "twilio", later)
	bExpired := mk(3, "run/b", "stripe", now.Add(-time.Minute))
	aRevoked := mk(4, "run/a", "stripe", later)
	bResend := mk(5, "run/b", "resend", later)
	aAtExpiry := mk(6, "run/a", "resend", now)                       // expired exactly now
	aRevokedExpired := mk(7, "run/a", "stripe", now.Add(-time.Hour)) // revocation wins
	for _, k := range []ledger.Key{aRevoked, aRevokedExpired} {
		if _, err := f.s.RevokeKey(f.ctx, k.ID, t0.Add(time.Minute)); err != nil {
			f.t.Fatalf("RevokeKey: %v", err)
		}
	}
	// Usage shows in the list: $3 reserved today on aStripe.
	f.reserve(aStripe, usd("3"), now, ledger.OutcomeForwarded)

	ids := func(ks ...ledger.Key) []string {
		out := make([]string, len(ks))
		for i, k := range ks {
			out[i] = k.ID
		}
		return out
	}
	cases := []struct {
		filter ledger.KeyFilter
		want   []string
	}{
		{ledger.KeyFilter{}, ids(aRevokedExpired, aAtExpiry, bResend, aRevoked, bExpired, aTwilio, aStripe)},
		{ledger.KeyFilter{RunLabel: "run/a"}, ids(aRevokedExpired, aAtExpiry, aRevoked, aTwilio, aStripe)},
		{ledger.KeyFilter{Vendor: "stripe"}, ids(aRevokedExpired, aRevoked, bExpired, aStripe)},
		{ledger.KeyFilter{Status: ledger.StatusActive}, ids(bResend, aTwilio, aStripe)},
		{ledger.KeyFilter{Status: ledger.StatusExpired}, ids(aAtExpiry, bExpired)},
		{ledger.KeyFilter{Status: ledger.StatusRevoked}, ids(aRevokedExpired, aRevoked)},
		{ledger.KeyFilter{RunLabel: "run/a", Vendor: "stripe", Status: ledger.StatusActive}, ids(aStripe)},
		{ledger.KeyFilter{RunLabel: "run/b", Status: ledger.StatusActive}, ids(bResend)},
		{ledger.KeyFilter{RunLabel: "run/none"}, nil},
	}
	for _, c := range cases {
		c.filter.Now = now
		got, next, err := f.s.ListKeys(f.ctx, c.filter)
		if err != nil {
			f.t.Fatalf("ListKeys(%+v): %v", c.filter, err)
		}
		f.wantIDs(fmt.Sprintf("ListKeys(run=%q vendor=%q status=%q)", c.filter.RunLabel, c.filter.Vendor, c.filter.Status),
			keyIDs(got), c.want)
		if next != "" {
			f.t.Fatalf("ListKeys(%+v) cursor = %q on the only page; want \"\"", c.filter, next)
		}
	}

	got, _, err := f.s.ListKeys(f.ctx, ledger.KeyFilter{RunLabel: "run/a", Vendor: "stripe", Status: ledger.StatusActive, Now: now})
	if err != nil || len(got) != 1 {
		f.t.Fatalf("ListKeys: %v, %d keys", err, len(got))
	}
	if d := keyDiff(got[0].Key, aStripe); d != "" {
		f.t.Fatalf("listed key:\n%s", d)
	}
	u := usage{got[0].Spent, got[0].Reserved, got[0].DaySpent, got[0].DayReserved, got[0].Calls, got[0].CapHits}
	if want := (usage{Reserved: usd("3"), DayReserved: usd("3"), Calls: 1}); u != want {
		f.t.Fatalf("listed usage = %v; want %v", u, want)
	}
}

func testListKeysPaging(f *fixture) {
	var all []string // newest first
	for i := range 25 {
		k := f.newKey(func(k *ledger.Key) {
			k.CreatedAt = t0.Add(time.Duration(i) * time.Second)
			k.RunLabel = "run/odd"
			if i%2 == 0 {
				k.RunLabel = "run/even"
			}
		})
		all = append([]string{k.ID}, all...)
	}
	now := t0.Add(time.Hour)

	// Limit 10 over 25 keys: 10, 10, then 5 with no further cursor.
	var got []string
	filter := ledger.KeyFilter{Now: now, Limit: 10}
	for page, wantLen := range []int{10, 10, 5} {
		keys, next, err := f.s.ListKeys(f.ctx, filter)
		if err != nil {
			f.t.Fatalf("ListKeys page %d: %v", page, err)
		}
		if len(keys) != wantLen {
			f.t.Fatalf("page %d has %d keys; want %d", page, len(keys), wantLen)
		}
		if (next == "") != (page == 2) {
			f.t.Fatalf("page %d cursor = %q", page, next)
		}
		got = append(got, keyIDs(keys)...)
		filter.Cursor = next
	}
	f.wantIDs("25 keys paged by 10", got, all)

	// A filter holds across pages: 13 even keys by 5.
	var even, gotEven []string
	for i, id := range all {
		if (24-i)%2 == 0 {
			even = append(even, id)
		}
	}
	filter = ledger.KeyFilter{Now: now, Limit: 5, RunLabel: "run/even"}
	for page, wantLen := range []int{5, 5, 3} {
		keys, next, err := f.s.ListKeys(f.ctx, filter)
		if err != nil {
			f.t.Fatalf("ListKeys even page %d: %v", page, err)
		}
		if len(keys) != wantLen || (next == "") != (page == 2) {
			f.t.Fatalf("even page %d: %d keys, cursor %q; want %d keys", page, len(keys), next, wantLen)
		}
		gotEven = append(gotEven, keyIDs(keys)...)
		filter.Cursor = next
	}
	f.wantIDs("13 even keys paged by 5", gotEven, even)

	// Limit 0 means 100: everything on one page.
	keys, next, err := f.s.ListKeys(f.ctx, ledger.KeyFilter{Now: now})
	if err != nil || next != "" || len(keys) != 25 {
		f.t.Fatalf("ListKeys(limit 0) = %d keys, cursor %q, %v; want 25, \"\", nil", len(keys), next, err)
	}
}
