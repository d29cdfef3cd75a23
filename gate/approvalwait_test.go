package gate

import (
	"testing"
)

// TestApprovalsWake: a decision wakes the waiters of its approval only;
// "*" (notifications may have been missed) wakes them all; a waiter gone
// is forgotten.
func TestApprovalsWake(t *testing.T) {
	a := NewApprovals(nil, nil, nil)
	one, doneOne := a.register("ap1")
	two, doneTwo := a.register("ap2")
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	a.wake("ap1")
	if !woken(one) || woken(two) {
		t.Fatal("a decision woke the wrong waiter")
	}
	a.wake("ap1")
	a.wake("ap1") // a second signal while one is pending is dropped, not blocked on
	if !woken(one) || woken(one) {
		t.Fatal("repeated decisions are not one signal")
	}
	a.wake("*")
	if !woken(one) || !woken(two) {
		t.Fatal(`"*" did not wake every waiter`)
	}
	if a.Holding() != 2 {
		t.Fatalf("holding %d; want 2", a.Holding())
	}
	doneOne()
	doneTwo()
	if a.Holding() != 0 || len(a.waiters) != 0 {
		t.Fatal("waiters left after unregistering")
	}
}
