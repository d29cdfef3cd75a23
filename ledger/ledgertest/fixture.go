package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// t0 is the suite's reference time: mid-morning UTC, far from midnight so a
// few hours either way stay on the same UTC day.
var t0 = time.Date(2031, time.May, 17, 9, 30, 0, 0, time.UTC)

// fixture is one subtest's store plus helpers that fail the test on any
// unexpected error, so the tests read as the scenario they check.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   ledger.Store
	seq int
}

func newFixture(t *testing.T, s ledger.Store) *fixture {
	return &fixture{t: t, ctx: testContext(), s: s}
}

// usd parses a dollar amount exactly; the suite never writes money as floats.
func usd(s string) money.Micros {
	m, err := money.ParseUSD(s)
	if err != nil {
		panic(fmt.Sprintf("usd(%q): %v", s, err))
	}
	return m
}

func capOf(s string) *money.Micros {
	m := usd(s)
	return &m
}

func ptr[T any](v T) *T { return &v }

// next returns a fresh id suffix; ids use only [A-Za-z0-9] like real ones.
func (f *fixture) next() int {
	f.seq++
	return f.seq
}

// defaultEndpoints is the allowlist of a newKey: every endpoint the suite's
// requests name (Reserve checks the entry against the stored allowlist).
var defaultEndpoints = []string{"POST /v1/payment_intents", "GET /v1/customers/*", "POST /2010-04-01/Accounts/*/Messages.json"}

// newKey builds a stripe key with a $100 lifetime cap, valid for 72 hours
// from t0, created at t0; edit adjusts it before it is stored.
func (f *fixture) newKey(edit func(k *ledger.Key)) ledger.Key {
	f.t.Helper()
	n := f.next()
	k := ledger.Key{
		ID:               fmt.Sprintf("vkTest%05d", n),
		Hash:             ledger.HashSecret(fmt.Sprintf("secret%05d", n)),
		Vendor:           "stripe",
		TotalCap:         capOf("100"),
		AllowedEndpoints: defaultEndpoints,
		RunLabel:         "run/default",
		CreatedAt:        t0,
		ExpiresAt:        t0.Add(72 * time.Hour),
	}
	if edit != nil {
		edit(&k)
	}
	if err := f.s.CreateKey(f.ctx, k); err != nil {
		f.t.Fatalf("CreateKey(%s): %v", k.ID, err)
	}
	return k
}

// request builds a reservation for key k on its own vendor; edit adjusts it.
func (f *fixture) request(k ledger.Key, estimate money.Micros, now time.Time, edit func(r *ledger.ReserveRequest)) ledger.ReserveRequest {
	r := ledger.ReserveRequest{
		CallID:   fmt.Sprintf("call%06d", f.next()),
		KeyID:    k.ID,
		Vendor:   k.Vendor,
		Method:   "POST",
		Path:     "/v1/payment_intents",
		Endpoint: "POST /v1/payment_intents",
		Estimate: estimate,
		Now:      now,
	}
	if edit != nil {
		edit(&r)
	}
	return r
}

// reserve reserves and checks the outcome; it returns the call id.
func (f *fixture) reserve(k ledger.Key, estimate money.Micros, now time.Time, wantOutcome string) string {
	f.t.Helper()
	r := f.request(k, estimate, now, nil)
	f.reserveReq(r, wantOutcome)
	return r.CallID
}

func (f *fixture) reserveReq(r ledger.ReserveRequest, wantOutcome string) ledger.ReserveResult {
	f.t.Helper()
	res, err := f.s.Reserve(f.ctx, r)
	if err != nil {
		f.t.Fatalf("Reserve(%s, %s): %v", r.CallID, r.Estimate, err)
	}
	if res.Outcome != wantOutcome {
		f.t.Fatalf("Reserve(%s, %s) outcome = %q; want %q", r.CallID, r.Estimate, res.Outcome, wantOutcome)
	}
	return res
}

func (f *fixture) settle(callID string, s ledger.Settlement) {
	f.t.Helper()
	if err := f.s.Settle(f.ctx, callID, s); err != nil {
		f.t.Fatalf("Settle(%s): %v", callID, err)
	}
}

func (f *fixture) release(callID string, s ledger.Settlement) {
	f.t.Helper()
	if err := f.s.Release(f.ctx, callID, s); err != nil {
		f.t.Fatalf("Release(%s): %v", callID, err)
	}
}

func (f *fixture) markUnknown(callID string, s ledger.Settlement) {
	f.t.Helper()
	if err := f.s.MarkUnknown(f.ctx, callID, s); err != nil {
		f.t.Fatalf("MarkUnknown(%s): %v", callID, err)
	}
}

func (f *fixture) getKey(id string, now time.Time) ledger.KeyUsage {
	f.t.Helper()
	ku, err := f.s.GetKey(f.ctx, id, now)
	if err != nil {
		f.t.Fatalf("GetKey(%s): %v", id, err)
	}
	return ku
}

// usage is the part of KeyUsage that moves with calls.
type usage struct {
	Spent, Reserved, DaySpent, DayReserved money.Micros
	Calls, CapHits                         int64
}

func (u usage) String() string {
	return fmt.Sprintf("spent=%s reserved=%s daySpent=%s dayReserved=%s calls=%d capHits=%d",
		u.Spent, u.Reserved, u.DaySpent, u.DayReserved, u.Calls, u.CapHits)
}

// wantUsage checks a key's counters, with the day ones for now's UTC day.
func (f *fixture) wantUsage(id string, now time.Time, want usage) {
	f.t.Helper()
	ku := f.getKey(id, now)
	got := usage{ku.Spent, ku.Reserved, ku.DaySpent, ku.DayReserved, ku.Calls, ku.CapHits}
	if got != want {
		f.t.Fatalf("usage of %s on %s:\n got  %v\n want %v", id, now.UTC().Format("2006-01-02"), got, want)
	}
}

// call returns the one call with that id, through Audit.
func (f *fixture) call(keyID, callID string) ledger.Call {
	f.t.Helper()
	for _, c := range f.auditAll(ledger.AuditFilter{KeyID: keyID}) {
		if c.CallID == callID {
			return c
		}
	}
	f.t.Fatalf("call %s of key %s not in the audit", callID, keyID)
	return ledger.Call{}
}

// auditAll follows Audit's cursor to the end, failing on a cursor loop.
func (f *fixture) auditAll(filter ledger.AuditFilter) []ledger.Call {
	f.t.Helper()
	var all []ledger.Call
	for page := 0; ; page++ {
		if page > 100 {
			f.t.Fatalf("Audit(%+v): cursor never ends", filter)
		}
		calls, next, err := f.s.Audit(f.ctx, filter)
		if err != nil {
			f.t.Fatalf("Audit(%+v): %v", filter, err)
		}
		all = append(all, calls...)
		if next == "" {
			return all
		}
		filter.Cursor = next
	}
}

func callIDs(calls []ledger.Call) []string {
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.CallID
	}
	return ids
}

func keyIDs(keys []ledger.KeyUsage) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (f *fixture) wantIDs(what string, got, want []string) {
	f.t.Helper()
	if !equalStrings(got, want) {
		f.t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v; want %v", what, err, target)
	}
}
