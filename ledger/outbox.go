package ledger

import (
	"context"
	"sort"
	"time"
)

// OutboxEvent is one alert waiting in the ledger's outbox for one webhook.
// It is written in the same ledger as the spend it reports, so an event
// outlives the node that noticed it, and is sent at least once.
type OutboxEvent struct {
	// ID is the event's id (evt…), stable across retries, so a receiver
	// can drop a duplicate delivery.
	ID string
	// Webhook names the webhook the event is for.
	Webhook string
	// DedupeKey makes the event unique for its webhook: a second event with
	// the same key (another node, another call crossing the same
	// threshold) is not stored. E.g. "key.threshold:vk…:total:80".
	DedupeKey string
	// Type is the event type (key.threshold, key.cap_hit, …).
	Type string
	// Payload is the JSON body to send, as it will be signed.
	Payload   []byte
	CreatedAt time.Time
	// Attempts counts the deliveries tried, including the one a claim
	// starts.
	Attempts int
}

// Outbox is the durable queue of alert events. Both backends implement it
// (tested by ledgertest's outbox contract); it is apart from Store so that a
// Store without alerts (a test fake) needs nothing more.
type Outbox interface {
	// EnqueueEvent stores e, due at once. It reports false, and stores
	// nothing, when an event with the same Webhook and DedupeKey exists
	// (delivered or not): exactly one event per threshold crossing,
	// whatever the number of nodes and calls that see it.
	EnqueueEvent(ctx context.Context, e OutboxEvent) (bool, error)
	// ClaimEvents returns at most limit events due at now (not delivered,
	// not given up, next attempt at or before now), oldest first, and
	// leases them until now+lease: no other claim returns them before that,
	// on any node. Attempts is incremented. A sender that dies with a claim
	// leaves the events to be claimed again when the lease ends.
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxEvent, error)
	// EventDelivered marks an event sent at now; it is never claimed again.
	EventDelivered(ctx context.Context, id string, now time.Time) error
	// EventFailed records a failed attempt and when to try next; with
	// giveUp the event is never claimed again (kept for the record).
	EventFailed(ctx context.Context, id string, lastError string, next time.Time, giveUp bool) error
	// PendingEvents counts the events not delivered and not given up.
	PendingEvents(ctx context.Context) (int, error)
}

// SortOutbox puts claimed events oldest first (RETURNING keeps no order).
func SortOutbox(events []OutboxEvent) {
	sort.SliceStable(events, func(i, j int) bool {
		if !events[i].CreatedAt.Equal(events[j].CreatedAt) {
			return events[i].CreatedAt.Before(events[j].CreatedAt)
		}
		return events[i].ID < events[j].ID
	})
}
