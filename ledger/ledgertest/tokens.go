package ledgertest

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// newToken stores an issuer token created at t0; edit adjusts it first.
func (f *fixture) newToken(edit func(t *ledger.Token)) ledger.Token {
	f.t.Helper()
	n := f.next()
	tk := ledger.Token{
		ID:        fmt.Sprintf("tkTest%05d", n),
		Hash:      ledger.HashSecret(fmt.Sprintf("token%05d", n)),
		Name:      fmt.Sprintf("windmill-%d", n),
		Role:      ledger.RoleIssuer,
		CreatedAt: t0,
	}
	if edit != nil {
		edit(&tk)
	}
	if err := f.s.CreateToken(f.ctx, tk); err != nil {
		f.t.Fatalf("CreateToken(%s): %v", tk.ID, err)
	}
	return tk
}

// budget is the part of TokenUsage that moves with its keys' calls.
type budget struct {
	Spent, Reserved, DaySpent, DayReserved money.Micros
}

func (f *fixture) wantBudget(id string, now time.Time, want budget) {
	f.t.Helper()
	u, err := f.s.GetToken(f.ctx, id, now)
	if err != nil {
		f.t.Fatalf("GetToken(%s): %v", id, err)
	}
	if got := (budget{u.Spent, u.Reserved, u.DaySpent, u.DayReserved}); got != want {
		f.t.Fatalf("budget of %s on %s:\n got  %+v\n want %+v", id, now.Format("2006-01-02"), got, want)
	}
}

// testTokens: a token is stored by hash with its policy and budget, found
// by hash, listed newest first, and revoked once.
func testTokens(f *fixture) {
	policy := json.RawMessage(`{"vendors":["stripe"],"max_key_usd":"500"}`)
	a := f.newToken(func(t *ledger.Token) { t.Policy = policy; t.DailyCap = capOf("20"); t.TotalCap = capOf("100") })
	b := f.newToken(func(t *ledger.Token) { t.Role = ledger.RoleReader; t.CreatedAt = t0.Add(time.Second) })

	got, err := f.s.TokenByHash(f.ctx, a.Hash)
	if err != nil {
		f.t.Fatalf("TokenByHash: %v", err)
	}
	if got.ID != a.ID || got.Name != a.Name || got.Role != ledger.RoleIssuer || !got.CreatedAt.Equal(t0) ||
		got.DailyCap == nil || *got.DailyCap != usd("20") || got.TotalCap == nil || *got.TotalCap != usd("100") ||
		got.RevokedAt != nil || got.Hash != a.Hash {
		f.t.Fatalf("TokenByHash = %+v; want %+v", got, a)
	}
	var gotPolicy, wantPolicy any
	if json.Unmarshal(got.Policy, &gotPolicy) != nil || json.Unmarshal(policy, &wantPolicy) != nil ||
		fmt.Sprint(gotPolicy) != fmt.Sprint(wantPolicy) {
		f.t.Fatalf("policy = %s; want %s", got.Policy, policy)
	}
	_, err = f.s.TokenByHash(f.ctx, ledger.HashSecret("nope"))
	wantErrIs(f.t, "TokenByHash(unknown)", err, ledger.ErrNotFound)
	err = f.s.CreateToken(f.ctx, ledger.Token{ID: a.ID, Hash: ledger.HashSecret("other"), Name: "x", Role: ledger.RoleAdmin, CreatedAt: t0})
	wantErrIs(f.t, "CreateToken(same id)", err, ledger.ErrConflict)

	list, err := f.s.ListTokens(f.ctx, t0)
	if err != nil {
		f.t.Fatalf("ListTokens: %v", err)
	}
	if len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID || list[0].Policy != nil {
		f.t.Fatalf("ListTokens = %+v; want %s then %s", list, b.ID, a.ID)
	}

	first := t0.Add(time.Hour)
	r, err := f.s.RevokeToken(f.ctx, a.ID, first)
	if err != nil || r.RevokedAt == nil || !r.RevokedAt.Equal(first) {
		f.t.Fatalf("RevokeToken = %+v, %v", r, err)
	}
	r, err = f.s.RevokeToken(f.ctx, a.ID, first.Add(time.Hour))
	if err != nil || r.RevokedAt == nil || !r.RevokedAt.Equal(first) {
		f.t.Fatalf("second RevokeToken = %+v, %v; want the first time kept", r, err)
	}
	_, err = f.s.RevokeToken(f.ctx, "tkNone", first)
	wantErrIs(f.t, "RevokeToken(unknown)", err, ledger.ErrNotFound)
	_, err = f.s.GetToken(f.ctx, "tkNone", first)
	wantErrIs(f.t, "GetToken(unknown)", err, ledger.ErrNotFound)
}

// testRevokeKeys: a run, or every key of a token, is revoked at once; keys
// already revoked keep their time and are not returned again.
func testRevokeKeys(f *fixture) {
	tk := f.newToken(nil)
	k1 := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/a"; k.TokenID = tk.ID })
	k2 := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/a" })
	k3 := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/b"; k.TokenID = tk.ID })
	k4 := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/c" })

	if got := f.getKey(k1.ID, t0).TokenID; got != tk.ID {
		f.t.Fatalf("key's token = %q; want %q", got, tk.ID)
	}
	at := t0.Add(time.Minute)
	ids, err := f.s.RevokeKeys(f.ctx, ledger.RevokeFilter{RunLabel: "run/a"}, at)
	if err != nil {
		f.t.Fatalf("RevokeKeys(run): %v", err)
	}
	sort.Strings(ids)
	f.wantIDs("revoked run/a", ids, []string{k1.ID, k2.ID})
	f.reserve(k1, usd("1"), at, ledger.OutcomeRevoked)

	ids, err = f.s.RevokeKeys(f.ctx, ledger.RevokeFilter{TokenID: tk.ID}, at.Add(time.Minute))
	if err != nil {
		f.t.Fatalf("RevokeKeys(token): %v", err)
	}
	f.wantIDs("revoked the token's keys", ids, []string{k3.ID})
	if ra := f.getKey(k1.ID, at).RevokedAt; ra == nil || !ra.Equal(at) {
		f.t.Fatalf("k1 revoked at %v; want %v kept", ra, at)
	}
	f.reserve(k4, usd("1"), at, ledger.OutcomeForwarded)

	keys, _, err := f.s.ListKeys(f.ctx, ledger.KeyFilter{TokenID: tk.ID, Now: at})
	if err != nil {
		f.t.Fatalf("ListKeys(token): %v", err)
	}
	got := keyIDs(keys)
	sort.Strings(got)
	f.wantIDs("keys of the token", got, []string{k1.ID, k3.ID})
}

// testPatchKey: caps, expiry and allowlist change; the next Reserve sees
// them; unset fields stay.
func testPatchKey(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = capOf("5") })
	f.reserve(k, usd("5"), t0, ledger.OutcomeForwarded)
	f.reserve(k, usd("1"), t0, ledger.OutcomeCapHit)

	later := t0.Add(100 * time.Hour)
	got, err := f.s.PatchKey(f.ctx, k.ID, ledger.KeyPatch{TotalCap: capOf("8"), DailyCap: capOf("7"), ExpiresAt: &later})
	if err != nil {
		f.t.Fatalf("PatchKey: %v", err)
	}
	if *got.TotalCap != usd("8") || *got.DailyCap != usd("7") || !got.ExpiresAt.Equal(later) ||
		!equalStrings(got.AllowedEndpoints, defaultEndpoints) || got.RunLabel != k.RunLabel {
		f.t.Fatalf("patched key = %+v", got)
	}
	f.reserve(k, usd("2"), t0, ledger.OutcomeForwarded)                   // daily 7 allows 7 today
	f.reserve(k, usd("0.000001"), t0, ledger.OutcomeCapHit)               // daily 7 reached
	f.reserve(k, usd("1"), t0.Add(80*time.Hour), ledger.OutcomeForwarded) // past the old expiry, new day

	got, err = f.s.PatchKey(f.ctx, k.ID, ledger.KeyPatch{AllowedEndpoints: []string{"GET /v1/customers/*"}})
	if err != nil || !equalStrings(got.AllowedEndpoints, []string{"GET /v1/customers/*"}) || *got.TotalCap != usd("8") {
		f.t.Fatalf("PatchKey(allowlist) = %+v, %v", got, err)
	}
	kb, err := f.s.KeyByHash(f.ctx, k.Hash)
	if err != nil || !equalStrings(kb.AllowedEndpoints, []string{"GET /v1/customers/*"}) {
		f.t.Fatalf("KeyByHash after patch = %+v, %v", kb, err)
	}
	// The stored allowlist decides, whatever a node cached: the entry the
	// gate matched before the PATCH is refused, for spend and free calls.
	at := t0.Add(81 * time.Hour)
	deniedReq := f.request(k, usd("1"), at, nil)
	denied := f.reserveReq(deniedReq, ledger.OutcomeEndpointDenied)
	if denied.Reserved != 0 {
		f.t.Fatalf("an endpoint refusal held %s", denied.Reserved)
	}
	free := f.request(k, 0, at, nil)
	f.reserveReq(free, ledger.OutcomeEndpointDenied)
	// Both refusals of the minute are counted in the first one's record.
	if c := f.call(k.ID, deniedReq.CallID); c.StatusCode != 403 || c.CostState != ledger.CostNone || c.Count != 2 {
		f.t.Fatalf("endpoint refusals recorded as %+v; want one record counting 2", c)
	}
	f.reserveReq(f.request(k, 0, at, func(r *ledger.ReserveRequest) {
		r.Method, r.Path, r.Endpoint = "GET", "/v1/customers/cus_1", "GET /v1/customers/*"
	}), ledger.OutcomeForwarded)
	_, err = f.s.PatchKey(f.ctx, "vkNone", ledger.KeyPatch{TotalCap: capOf("1")})
	wantErrIs(f.t, "PatchKey(unknown)", err, ledger.ErrNotFound)
}

// testBudgetTotal: a token's total budget bounds the sum over its keys,
// each of which could afford more alone; settling and releasing move the
// budget as they move the keys; a key of no token is not bounded by it.
func testBudgetTotal(f *fixture) {
	tk := f.newToken(func(t *ledger.Token) { t.TotalCap = capOf("10") })
	a := f.newKey(func(k *ledger.Key) { k.TokenID = tk.ID })
	b := f.newKey(func(k *ledger.Key) { k.TokenID = tk.ID; k.DailyCap = capOf("50"); k.TotalCap = nil })
	free := f.newKey(nil)

	ca := f.reserve(a, usd("6"), t0, ledger.OutcomeForwarded)
	res := f.reserveReq(f.request(b, usd("4"), t0, nil), ledger.OutcomeForwarded)
	if res.Remaining != 0 {
		f.t.Fatalf("remaining after filling the budget = %s; want 0 (the budget is tighter)", res.Remaining)
	}
	hit := f.reserveReq(f.request(b, usd("0.000001"), t0, nil), ledger.OutcomeBudgetHit)
	if hit.Remaining != 0 {
		f.t.Fatalf("remaining on a budget hit = %s", hit.Remaining)
	}
	f.reserve(a, usd("95"), t0, ledger.OutcomeCapHit) // the key's own cap speaks first
	f.reserve(free, usd("50"), t0, ledger.OutcomeForwarded)
	f.wantBudget(tk.ID, t0, budget{Reserved: usd("10"), DayReserved: usd("10")})
	f.wantUsage(b.ID, t0, usage{Reserved: usd("4"), DayReserved: usd("4"), Calls: 1, CapHits: 1})

	// a's $6 call cost $2.5: $3.5 comes back to the budget.
	f.settle(ca, ledger.Settlement{StatusCode: 200, Cost: usd("2.5"), Now: t0})
	f.wantBudget(tk.ID, t0, budget{Spent: usd("2.5"), Reserved: usd("4"), DaySpent: usd("2.5"), DayReserved: usd("4")})
	f.reserve(b, usd("3.500001"), t0, ledger.OutcomeBudgetHit)
	c := f.reserve(b, usd("3.5"), t0, ledger.OutcomeForwarded)
	f.release(c, ledger.Settlement{StatusCode: 402, Now: t0})
	f.wantBudget(tk.ID, t0, budget{Spent: usd("2.5"), Reserved: usd("4"), DaySpent: usd("2.5"), DayReserved: usd("4")})

	calls := f.auditAll(ledger.AuditFilter{KeyID: b.ID, Outcome: ledger.OutcomeBudgetHit})
	if len(calls) != 1 || calls[0].Count != 2 || calls[0].StatusCode != 429 || calls[0].CostState != ledger.CostNone {
		f.t.Fatalf("budget hits in the audit = %+v; want one record of the minute counting 2, status 429", calls)
	}
}

// testBudgetDaily: a daily budget is per UTC day, across keys; a call
// settled after midnight moves the day it started on.
func testBudgetDaily(f *fixture) {
	tk := f.newToken(func(t *ledger.Token) { t.DailyCap = capOf("5") })
	a := f.newKey(func(k *ledger.Key) { k.TokenID = tk.ID })
	b := f.newKey(func(k *ledger.Key) { k.TokenID = tk.ID })
	day1 := t0
	day2 := ledger.Day(t0).Add(24*time.Hour + time.Hour)

	c1 := f.reserve(a, usd("3"), day1, ledger.OutcomeForwarded)
	f.reserve(b, usd("2"), day1, ledger.OutcomeForwarded)
	f.reserve(b, usd("0.000001"), day1, ledger.OutcomeBudgetHit)
	f.reserve(b, usd("5"), day2, ledger.OutcomeForwarded)
	f.reserve(a, usd("0.000001"), day2, ledger.OutcomeBudgetHit)
	f.settle(c1, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: day2})
	f.wantBudget(tk.ID, day1, budget{Spent: usd("1"), Reserved: usd("7"), DaySpent: usd("1"), DayReserved: usd("2")})
	f.wantBudget(tk.ID, day2, budget{Spent: usd("1"), Reserved: usd("7"), DayReserved: usd("5")})
	f.reserve(a, usd("2"), day1.Add(time.Hour), ledger.OutcomeForwarded) // day 1 got $2 back
}

// testBudgetMinimum: a call that may shrink (a Minimum) shrinks to the
// budget's headroom, and is a budget hit below its minimum.
func testBudgetMinimum(f *fixture) {
	tk := f.newToken(func(t *ledger.Token) { t.TotalCap = capOf("3") })
	k := f.newKey(func(k *ledger.Key) { k.TokenID = tk.ID })
	withMin := func(m string) func(r *ledger.ReserveRequest) {
		return func(r *ledger.ReserveRequest) { r.Minimum = usd(m) }
	}
	res := f.reserveReq(f.request(k, usd("10"), t0, withMin("1")), ledger.OutcomeForwarded)
	if res.Reserved != usd("3") {
		f.t.Fatalf("reserved %s; want the budget's $3", res.Reserved)
	}
	f.reserveReq(f.request(k, usd("10"), t0, withMin("0.000001")), ledger.OutcomeBudgetHit)
}

// testConcurrentTokenBudget: 500 callers race over 3 keys of one token
// whose total budget fits exactly 211 calls (each key alone could afford
// them all). Exactly 211 win; the keys' reservations add up to the budget.
func testConcurrentTokenBudget(f *fixture) {
	const fit = 211
	estimate := usd("0.43")
	limit := estimate * fit
	tk := f.newToken(func(t *ledger.Token) { t.TotalCap = &limit })
	keys := make([]ledger.Key, 3)
	for i := range keys {
		keys[i] = f.newKey(func(k *ledger.Key) { k.TokenID = tk.ID; k.TotalCap = capOf("1000") })
	}
	now := t0.Add(time.Minute)
	reqs := make([]ledger.ReserveRequest, concurrentCalls)
	for i := range reqs {
		reqs[i] = f.request(keys[i%3], estimate, now, func(r *ledger.ReserveRequest) { r.CallID = fmt.Sprintf("budget%04d", i) })
	}
	res := f.raceReserve(reqs)
	if res.forwarded != fit || res.budgetHits != concurrentCalls-fit || res.capHits != 0 {
		f.t.Fatalf("forwarded %d, budget hits %d, cap hits %d; want %d, %d, 0",
			res.forwarded, res.budgetHits, res.capHits, fit, concurrentCalls-fit)
	}
	var sum money.Micros
	for _, k := range keys {
		sum += f.getKey(k.ID, now).Reserved
	}
	if sum != limit {
		f.t.Fatalf("keys hold %s together; want the budget %s", sum, limit)
	}
	f.wantBudget(tk.ID, now, budget{Reserved: limit, DayReserved: limit})
}
