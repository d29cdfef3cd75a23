package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// approvalTests are the approval contract, run by Run for a store that is
// a ledger.ApprovalStore (both backends are).
var approvalTests = []struct {
	name string
	run  func(f *fixture, s ledger.ApprovalStore)
}{
	{"Approvals/KeyRule", testApprovalKeyRule},
	{"Approvals/Lifecycle", testApprovalLifecycle},
	{"Approvals/DecideOnce", testApprovalDecideOnce},
	{"Approvals/ConsumeMatches", testApprovalConsumeMatches},
	{"Approvals/ConsumeRace", testApprovalConsumeRace},
	{"Approvals/Watch", testApprovalWatch},
}

func (f *fixture) approvals() ledger.ApprovalStore {
	s, ok := f.s.(ledger.ApprovalStore)
	if !ok {
		f.t.Skip("store keeps no approvals")
	}
	return s
}

// newApproval records a pending approval of key k for a request hash,
// asked at t0, valid for an hour.
func (f *fixture) newApproval(s ledger.ApprovalStore, k ledger.Key, hash string) ledger.Approval {
	f.t.Helper()
	a := ledger.Approval{
		ID: fmt.Sprintf("apTest%05d", f.next()), KeyID: k.ID, TokenID: k.TokenID, RunLabel: k.RunLabel,
		Vendor: k.Vendor, Method: "POST", Path: "/v1/refunds", Endpoint: "POST /v1/refunds",
		Subjects: "refund of ch_1", Estimate: usd("60"), RequestHash: hash,
		CallID: fmt.Sprintf("call%06d", f.next()), RequestedAt: t0, ExpiresAt: t0.Add(time.Hour),
	}
	if err := s.CreateApproval(f.ctx, a); err != nil {
		f.t.Fatalf("CreateApproval: %v", err)
	}
	return a
}

func testApprovalKeyRule(f *fixture, _ ledger.ApprovalStore) {
	rule := &ledger.ApprovalRule{Above: usd("50"), Wait: 30 * time.Second, TTL: time.Hour}
	k := f.newKey(func(k *ledger.Key) { k.Approval = rule })
	plain := f.newKey(nil)
	got, err := f.s.KeyByHash(f.ctx, k.Hash)
	if err != nil {
		f.t.Fatal(err)
	}
	if got.Approval == nil || *got.Approval != *rule {
		f.t.Fatalf("KeyByHash approval = %+v; want %+v", got.Approval, rule)
	}
	if u := f.getKey(k.ID, t0); u.Approval == nil || *u.Approval != *rule {
		f.t.Fatalf("GetKey approval = %+v; want %+v", u.Approval, rule)
	}
	if u := f.getKey(plain.ID, t0); u.Approval != nil {
		f.t.Fatalf("a key without a rule has approval %+v", u.Approval)
	}

	// PATCH: a new rule replaces it, on a key with one and on one without;
	// RemoveApproval takes it away; a patch of something else keeps it.
	stricter := &ledger.ApprovalRule{Above: usd("10"), Wait: 5 * time.Second, TTL: time.Minute}
	for _, key := range []ledger.Key{k, plain} {
		if p, err := f.s.PatchKey(f.ctx, key.ID, ledger.KeyPatch{Approval: stricter}); err != nil || p.Approval == nil || *p.Approval != *stricter {
			f.t.Fatalf("PatchKey(approval) = %+v, %v", p.Approval, err)
		}
		if got, err := f.s.KeyByHash(f.ctx, key.Hash); err != nil || got.Approval == nil || *got.Approval != *stricter {
			f.t.Fatalf("KeyByHash after PatchKey(approval) = %+v, %v", got.Approval, err)
		}
	}
	later := t0.Add(time.Hour)
	if p, err := f.s.PatchKey(f.ctx, k.ID, ledger.KeyPatch{ExpiresAt: &later}); err != nil || p.Approval == nil || *p.Approval != *stricter {
		f.t.Fatalf("PatchKey(expiry) changed the approval: %+v, %v", p.Approval, err)
	}
	if p, err := f.s.PatchKey(f.ctx, k.ID, ledger.KeyPatch{RemoveApproval: true, Approval: rule}); err != nil || p.Approval != nil {
		f.t.Fatalf("PatchKey(remove approval) = %+v, %v", p.Approval, err)
	}
	if u := f.getKey(k.ID, t0); u.Approval != nil {
		f.t.Fatalf("GetKey after the approval was removed: %+v", u.Approval)
	}
}

func testApprovalLifecycle(f *fixture, s ledger.ApprovalStore) {
	k := f.newKey(nil)
	a := f.newApproval(s, k, "h1")
	got, err := s.GetApproval(f.ctx, a.ID)
	if err != nil || got.Status != ledger.ApprovalPending || got.Estimate != a.Estimate || got.Subjects != a.Subjects ||
		!got.RequestedAt.Equal(t0) || got.DecidedAt != nil {
		f.t.Fatalf("GetApproval = %+v, %v", got, err)
	}
	if _, err := s.GetApproval(f.ctx, "apNone"); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("GetApproval(unknown) = %v; want ErrNotFound", err)
	}
	list := func(status string, now time.Time) int {
		as, err := s.ListApprovals(f.ctx, ledger.ApprovalFilter{Status: status, Now: now})
		if err != nil {
			f.t.Fatal(err)
		}
		return len(as)
	}
	if list(ledger.ApprovalPending, t0) != 1 || list(ledger.ApprovalExpired, t0) != 0 || list("", t0) != 1 {
		f.t.Fatal("a fresh approval is not listed as pending only")
	}
	// Past its expiry a pending approval reads as expired.
	late := t0.Add(2 * time.Hour)
	if list(ledger.ApprovalPending, late) != 0 || list(ledger.ApprovalExpired, late) != 1 || got.StatusAt(late) != ledger.ApprovalExpired {
		f.t.Fatal("an approval past its expiry is not expired")
	}
	decided, err := s.DecideApproval(f.ctx, a.ID, ledger.ApprovalDecision{Approve: true, By: "tkBoss", Reason: "ok", Now: t0.Add(time.Minute)})
	if err != nil || decided.Status != ledger.ApprovalApproved || decided.DecidedBy != "tkBoss" || decided.Reason != "ok" ||
		decided.DecidedAt == nil || !decided.DecidedAt.Equal(t0.Add(time.Minute)) {
		f.t.Fatalf("DecideApproval = %+v, %v", decided, err)
	}
	if list(ledger.ApprovalPending, t0) != 0 || list(ledger.ApprovalApproved, t0) != 1 {
		f.t.Fatal("an approved approval is not listed as approved")
	}
	// An expired approval cannot be decided.
	b := f.newApproval(s, k, "h2")
	if _, err := s.DecideApproval(f.ctx, b.ID, ledger.ApprovalDecision{Approve: true, By: "x", Now: late}); !errors.Is(err, ledger.ErrNotPending) {
		f.t.Fatalf("deciding an expired approval: %v; want ErrNotPending", err)
	}
	if _, err := s.DecideApproval(f.ctx, "apNone", ledger.ApprovalDecision{Now: t0}); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("deciding an unknown approval: %v; want ErrNotFound", err)
	}
}

func testApprovalDecideOnce(f *fixture, s ledger.ApprovalStore) {
	a := f.newApproval(s, f.newKey(nil), "h")
	now := t0.Add(time.Second)
	if _, err := s.DecideApproval(f.ctx, a.ID, ledger.ApprovalDecision{Approve: false, By: "a", Reason: "no", Now: now}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := s.DecideApproval(f.ctx, a.ID, ledger.ApprovalDecision{Approve: true, By: "b", Now: now}); !errors.Is(err, ledger.ErrNotPending) {
		f.t.Fatalf("second decision: %v; want ErrNotPending", err)
	}
	got, _ := s.GetApproval(f.ctx, a.ID)
	if got.Status != ledger.ApprovalDenied || got.DecidedBy != "a" {
		f.t.Fatalf("after two decisions: %+v", got)
	}
	// A denied approval is never consumed.
	if _, err := s.ConsumeApproval(f.ctx, "", a.KeyID, "h", "c1", now); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("consuming a denied approval: %v; want ErrNotFound", err)
	}
}

func testApprovalConsumeMatches(f *fixture, s ledger.ApprovalStore) {
	k, other := f.newKey(nil), f.newKey(nil)
	a := f.newApproval(s, k, "h")
	now := t0.Add(time.Second)
	if _, err := s.ConsumeApproval(f.ctx, "", k.ID, "h", "c0", now); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("consuming a pending approval: %v; want ErrNotFound", err)
	}
	if _, err := s.DecideApproval(f.ctx, a.ID, ledger.ApprovalDecision{Approve: true, By: "x", Now: now}); err != nil {
		f.t.Fatal(err)
	}
	for _, c := range []struct{ key, hash string }{{other.ID, "h"}, {k.ID, "other"}} {
		if _, err := s.ConsumeApproval(f.ctx, "", c.key, c.hash, "c1", now); !errors.Is(err, ledger.ErrNotFound) {
			f.t.Fatalf("consuming with key %s hash %s: %v; want ErrNotFound", c.key, c.hash, err)
		}
	}
	if _, err := s.ConsumeApproval(f.ctx, "", k.ID, "h", "c1", a.ExpiresAt); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("consuming an expired approval: %v; want ErrNotFound", err)
	}
	got, err := s.ConsumeApproval(f.ctx, "", k.ID, "h", "c2", now)
	if err != nil || got.ID != a.ID || got.Status != ledger.ApprovalConsumed || got.ConsumedBy != "c2" || got.ConsumedAt == nil {
		f.t.Fatalf("ConsumeApproval = %+v, %v", got, err)
	}
	if _, err := s.ConsumeApproval(f.ctx, "", k.ID, "h", "c3", now); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("consuming twice: %v; want ErrNotFound", err)
	}
	// The audit finds it from the call that asked and from the one it let
	// through.
	for _, ids := range [][]string{{a.CallID}, {"c2"}, {"cNone", a.CallID, "c2"}} {
		got, err := s.ApprovalsOfCalls(f.ctx, ids)
		if err != nil || len(got) != 1 || got[0].ID != a.ID {
			f.t.Fatalf("ApprovalsOfCalls(%v) = %+v, %v", ids, got, err)
		}
	}
	if got, err := s.ApprovalsOfCalls(f.ctx, []string{"cNone"}); err != nil || len(got) != 0 {
		f.t.Fatalf("ApprovalsOfCalls(unknown) = %+v, %v", got, err)
	}
	// By id: only that approval.
	b, c := f.newApproval(s, k, "h"), f.newApproval(s, k, "h")
	for _, x := range []ledger.Approval{b, c} {
		if _, err := s.DecideApproval(f.ctx, x.ID, ledger.ApprovalDecision{Approve: true, By: "x", Now: now}); err != nil {
			f.t.Fatal(err)
		}
	}
	if got, err := s.ConsumeApproval(f.ctx, c.ID, k.ID, "h", "c4", now); err != nil || got.ID != c.ID {
		f.t.Fatalf("ConsumeApproval(by id) = %+v, %v", got, err)
	}
	// A revoked key's approvals are not used.
	if _, err := f.s.RevokeKey(f.ctx, k.ID, now); err != nil {
		f.t.Fatal(err)
	}
	if _, err := s.ConsumeApproval(f.ctx, b.ID, k.ID, "h", "c5", now); !errors.Is(err, ledger.ErrNotFound) {
		f.t.Fatalf("consuming an approval of a revoked key: %v; want ErrNotFound", err)
	}
}

// testApprovalConsumeRace: many calls race for one approval; exactly one
// gets it.
func testApprovalConsumeRace(f *fixture, s ledger.ApprovalStore) {
	k := f.newKey(nil)
	a := f.newApproval(s, k, "h")
	now := t0.Add(time.Second)
	if _, err := s.DecideApproval(f.ctx, a.ID, ledger.ApprovalDecision{Approve: true, By: "x", Now: now}); err != nil {
		f.t.Fatal(err)
	}
	const racers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.ConsumeApproval(f.ctx, "", k.ID, "h", fmt.Sprintf("race%02d", i), now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, ledger.ErrNotFound):
				lost++
			default:
				f.t.Errorf("ConsumeApproval: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || lost != racers-1 {
		f.t.Fatalf("%d won, %d lost; want exactly one winner", won, lost)
	}
}

// testApprovalWatch: a decision reaches a watcher of the store.
func testApprovalWatch(f *fixture, s ledger.ApprovalStore) {
	a := f.newApproval(s, f.newKey(nil), "h")
	ctx, cancel := context.WithCancel(f.ctx)
	heard := make(chan string, 8)
	done := make(chan error, 1)
	go func() { done <- s.WatchApprovals(ctx, func(id string) { heard <- id }) }()
	// The watcher may not be listening yet: decide until it hears one,
	// each on a fresh approval, a bounded number of times.
	ids := map[string]bool{}
	var got string
	for i := 0; i < 50 && got == ""; i++ {
		id := a.ID
		if i > 0 {
			id = f.newApproval(s, f.newKey(nil), "h").ID
		}
		ids[id] = true
		if _, err := s.DecideApproval(f.ctx, id, ledger.ApprovalDecision{Approve: true, By: "x", Now: t0.Add(time.Second)}); err != nil {
			f.t.Fatal(err)
		}
		select {
		case got = <-heard:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !ids[got] && got != "*" {
		f.t.Fatalf("watcher heard %q; want one of the decided ids", got)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		f.t.Fatalf("WatchApprovals returned %v; want context.Canceled", err)
	}
}
