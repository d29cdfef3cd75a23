package ledgertest

import (
	"errors"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// testInvalidPageRequests: every backend refuses the same page requests
// the same way, with ledger.ErrInvalidPage: a negative limit (not read as
// "the default"), a cursor that is not one, and a cursor of another listing.
func testInvalidPageRequests(f *fixture) {
	t := f.t
	k1 := f.newKey(nil)
	f.newKey(func(k *ledger.Key) { k.CreatedAt = t0.Add(time.Second) })
	for i := range 2 {
		f.reserve(k1, usd("1"), t0.Add(time.Duration(i)*time.Minute), ledger.OutcomeForwarded)
	}
	now := t0.Add(time.Hour)

	_, keyCursor, err := f.s.ListKeys(f.ctx, ledger.KeyFilter{Now: now, Limit: 1})
	if err != nil || keyCursor == "" {
		t.Fatalf("ListKeys(limit 1) = cursor %q, %v; want a cursor", keyCursor, err)
	}
	_, callCursor, err := f.s.Audit(f.ctx, ledger.AuditFilter{Limit: 1})
	if err != nil || callCursor == "" {
		t.Fatalf("Audit(limit 1) = cursor %q, %v; want a cursor", callCursor, err)
	}

	wantInvalid := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ledger.ErrInvalidPage) {
			t.Errorf("%s: err = %v; want ErrInvalidPage", what, err)
		}
	}
	_, _, err = f.s.ListKeys(f.ctx, ledger.KeyFilter{Now: now, Limit: -1})
	wantInvalid("ListKeys(limit -1)", err)
	_, _, err = f.s.Audit(f.ctx, ledger.AuditFilter{Limit: -1})
	wantInvalid("Audit(limit -1)", err)
	_, err = f.s.PendingCalls(f.ctx, k1.Vendor, ledger.CostReserved, now, -1)
	wantInvalid("PendingCalls(limit -1)", err)

	_, _, err = f.s.ListKeys(f.ctx, ledger.KeyFilter{Now: now, Cursor: "not a cursor!"})
	wantInvalid("ListKeys(garbage cursor)", err)
	_, _, err = f.s.Audit(f.ctx, ledger.AuditFilter{Cursor: "not a cursor!"})
	wantInvalid("Audit(garbage cursor)", err)
	_, _, err = f.s.ListKeys(f.ctx, ledger.KeyFilter{Now: now, Cursor: callCursor})
	wantInvalid("ListKeys(an audit cursor)", err)
	_, _, err = f.s.Audit(f.ctx, ledger.AuditFilter{Cursor: keyCursor})
	wantInvalid("Audit(a keys cursor)", err)

	// Limit 0 is the default page, for PendingCalls too.
	pending, err := f.s.PendingCalls(f.ctx, k1.Vendor, ledger.CostReserved, now, 0)
	if err != nil || len(pending) != 2 {
		t.Fatalf("PendingCalls(limit 0) = %d calls, %v; want 2", len(pending), err)
	}
	// Settled calls are not pending: asking for them is a mistake, not an
	// empty list.
	if _, err := f.s.PendingCalls(f.ctx, k1.Vendor, ledger.CostSettled, now, 0); err == nil {
		t.Errorf("PendingCalls(settled) succeeded; want an error")
	}
}
