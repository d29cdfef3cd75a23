package authlimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := New(3, time.Second, 0)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 4 {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("attempt %d refused within the burst", i)
		}
		l.Fail("a", t0)
	}
	ok, wait := l.Allow("a", t0)
	if ok || wait != time.Second {
		t.Fatalf("after 4 failures: allowed %v, wait %v; want refused for 1s", ok, wait)
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Fatal("another address is limited too")
	}
	if ok, _ := l.Allow("a", t0.Add(time.Second)); !ok {
		t.Fatal("still refused once a failure was forgiven")
	}
	// A refused attempt is not a failure: it cannot push the wait further.
	if ok, _ := l.Allow("a", t0.Add(1500*time.Millisecond)); !ok {
		t.Fatal("refusals extended the wait")
	}
}

func TestLimiterBoundedMemory(t *testing.T) {
	l := New(1, time.Second, 2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.Fail("a", t0)
	l.Fail("b", t0)
	l.Fail("c", t0) // full: c is not tracked
	if len(l.tat) != 2 {
		t.Fatalf("tracks %d addresses; want at most 2", len(l.tat))
	}
	l.Fail("c", t0.Add(2*time.Second)) // a and b have recovered and are dropped
	if _, ok := l.tat["c"]; !ok || len(l.tat) != 1 {
		t.Fatalf("after recovery: %v", l.tat)
	}
}

func TestClientAddr(t *testing.T) {
	for in, want := range map[string]string{"192.0.2.1:1234": "192.0.2.1", "[2001:db8::1]:443": "2001:db8::1", "junk": "junk"} {
		if got := ClientAddr(in); got != want {
			t.Errorf("ClientAddr(%q) = %q; want %q", in, got, want)
		}
	}
}
