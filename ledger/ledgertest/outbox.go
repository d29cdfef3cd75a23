package ledgertest

import (
	"fmt"
	"sync"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// outbox is the store's Outbox, or the test fails: every backend has one.
func (f *fixture) outbox() ledger.Outbox {
	f.t.Helper()
	o, ok := f.s.(ledger.Outbox)
	if !ok {
		f.t.Fatalf("%T does not implement ledger.Outbox", f.s)
	}
	return o
}

func (f *fixture) event(webhook, dedupe string, at time.Time) ledger.OutboxEvent {
	n := f.next()
	return ledger.OutboxEvent{
		ID: fmt.Sprintf("evtTest%05d", n), Webhook: webhook, DedupeKey: dedupe, Type: "key.threshold",
		Payload: []byte(fmt.Sprintf(`{"id":"evtTest%05d","n":%d}`, n, n)), CreatedAt: at,
	}
}

func (f *fixture) enqueue(e ledger.OutboxEvent) bool {
	f.t.Helper()
	added, err := f.outbox().EnqueueEvent(f.ctx, e)
	if err != nil {
		f.t.Fatalf("EnqueueEvent %s: %v", e.DedupeKey, err)
	}
	return added
}

func (f *fixture) claim(now time.Time, lease time.Duration, limit int) []ledger.OutboxEvent {
	f.t.Helper()
	events, err := f.outbox().ClaimEvents(f.ctx, now, lease, limit)
	if err != nil {
		f.t.Fatalf("ClaimEvents: %v", err)
	}
	return events
}

func (f *fixture) pending() int {
	f.t.Helper()
	n, err := f.outbox().PendingEvents(f.ctx)
	if err != nil {
		f.t.Fatalf("PendingEvents: %v", err)
	}
	return n
}

func eventIDs(events []ledger.OutboxEvent) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return ids
}

// testOutboxDedupe: one event per webhook and dedupe key, whoever enqueues
// it and however often.
func testOutboxDedupe(f *fixture) {
	first := f.event("ops", "key.threshold:vk1:total:80", t0)
	if !f.enqueue(first) {
		f.t.Fatal("first event not stored")
	}
	again := f.event("ops", "key.threshold:vk1:total:80", t0.Add(time.Second))
	if f.enqueue(again) {
		f.t.Error("a second event with the same webhook and dedupe key was stored")
	}
	if !f.enqueue(f.event("slack", "key.threshold:vk1:total:80", t0)) {
		f.t.Error("the same dedupe key for another webhook was not stored")
	}
	if n := f.pending(); n != 2 {
		f.t.Errorf("PendingEvents = %d, want 2", n)
	}
	got := f.claim(t0.Add(time.Minute), time.Minute, 10)
	if len(got) != 2 {
		f.t.Fatalf("claimed %v, want 2 events", eventIDs(got))
	}
	for _, e := range got {
		if e.Webhook == "ops" && (e.ID != first.ID || string(e.Payload) != string(first.Payload) ||
			!e.CreatedAt.Equal(first.CreatedAt) || e.Type != first.Type || e.DedupeKey != first.DedupeKey) {
			f.t.Errorf("claimed %+v, want the first event as stored %+v", e, first)
		}
	}
	// Delivered, the key stays taken: a crossing seen again later is not
	// a new event.
	for _, e := range got {
		if err := f.outbox().EventDelivered(f.ctx, e.ID, t0.Add(time.Minute)); err != nil {
			f.t.Fatal(err)
		}
	}
	if f.enqueue(f.event("ops", "key.threshold:vk1:total:80", t0.Add(time.Hour))) {
		f.t.Error("an event was stored again after its first was delivered")
	}
}

// testOutboxClaimLease: only due events are claimed, oldest first, at most
// limit; a claimed event is leased until its lease ends, then due again
// with one more attempt; a delivered one never comes back.
func testOutboxClaimLease(f *fixture) {
	a := f.event("ops", "a", t0)
	b := f.event("ops", "b", t0.Add(time.Second))
	c := f.event("ops", "c", t0.Add(2*time.Second))
	for _, e := range []ledger.OutboxEvent{c, a, b} {
		f.enqueue(e)
	}
	if got := f.claim(t0.Add(-time.Second), time.Minute, 10); len(got) != 0 {
		f.t.Errorf("claimed %v before any was due", eventIDs(got))
	}
	got := f.claim(t0.Add(time.Second), time.Minute, 10)
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint([]string{a.ID, b.ID}) {
		f.t.Fatalf("claimed %v, want the two due events oldest first [%s %s]", eventIDs(got), a.ID, b.ID)
	}
	if got[0].Attempts != 1 {
		f.t.Errorf("Attempts = %d after the first claim, want 1", got[0].Attempts)
	}
	// Leased: not claimed again within the lease, c is now due.
	got = f.claim(t0.Add(30*time.Second), time.Minute, 1)
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint([]string{c.ID}) {
		f.t.Fatalf("claimed %v within the lease, want only %s (limit 1)", eventIDs(got), c.ID)
	}
	if err := f.outbox().EventDelivered(f.ctx, a.ID, t0.Add(40*time.Second)); err != nil {
		f.t.Fatal(err)
	}
	// The lease of b ends at t0+1s+1m: its sender died; it is claimed again.
	got = f.claim(t0.Add(time.Second+time.Minute), time.Minute, 10)
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint([]string{b.ID}) {
		f.t.Fatalf("claimed %v after the lease, want %s again (a delivered, c still leased)", eventIDs(got), b.ID)
	}
	if got[0].Attempts != 2 {
		f.t.Errorf("Attempts = %d on the second claim, want 2", got[0].Attempts)
	}
	if n := f.pending(); n != 2 {
		f.t.Errorf("PendingEvents = %d, want 2 (b and c)", n)
	}
}

// testOutboxFailed: a failed attempt waits for its next time; one given up
// is never claimed again, and not pending.
func testOutboxFailed(f *fixture) {
	retry := f.event("ops", "retry", t0)
	dead := f.event("ops", "dead", t0)
	f.enqueue(retry)
	f.enqueue(dead)
	if got := f.claim(t0, time.Minute, 10); len(got) != 2 {
		f.t.Fatalf("claimed %v, want 2", eventIDs(got))
	}
	next := t0.Add(10 * time.Second)
	if err := f.outbox().EventFailed(f.ctx, retry.ID, "503 Service Unavailable", next, false); err != nil {
		f.t.Fatal(err)
	}
	if err := f.outbox().EventFailed(f.ctx, dead.ID, "410 Gone", next, true); err != nil {
		f.t.Fatal(err)
	}
	if got := f.claim(next.Add(-time.Microsecond), time.Minute, 10); len(got) != 0 {
		f.t.Errorf("claimed %v before the retry time", eventIDs(got))
	}
	got := f.claim(next, time.Minute, 10)
	if fmt.Sprint(eventIDs(got)) != fmt.Sprint([]string{retry.ID}) {
		f.t.Fatalf("claimed %v at the retry time, want only %s", eventIDs(got), retry.ID)
	}
	if n := f.pending(); n != 1 {
		f.t.Errorf("PendingEvents = %d, want 1 (the given-up event is not pending)", n)
	}
	if got := f.claim(t0.Add(24*time.Hour), time.Minute, 10); len(got) != 1 || got[0].ID != retry.ID {
		f.t.Errorf("claimed %v a day later, want only %s", eventIDs(got), retry.ID)
	}
}

// testOutboxConcurrentClaims: senders claiming at once (nodes of a fleet)
// get disjoint events, and together every due event.
func testOutboxConcurrentClaims(f *fixture) {
	const events, senders = 40, 4
	for i := range events {
		f.enqueue(f.event("ops", fmt.Sprintf("e%d", i), t0.Add(time.Duration(i)*time.Microsecond)))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := f.outbox().ClaimEvents(f.ctx, t0.Add(time.Second), time.Hour, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, e := range got {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Fatalf("ClaimEvents: %v", err)
	}
	if len(seen) != events {
		f.t.Errorf("claimed %d distinct events, want %d", len(seen), events)
	}
	for id, n := range seen {
		if n != 1 {
			f.t.Errorf("event %s claimed %d times within its lease", id, n)
		}
	}
}
