package gate

import (
	"time"

	"github.com/keybrake/keybrake/money"
)

// Event is what the gate tells an Observer about one finished call. It
// carries no secret, no key id and no run label: only what is safe as a
// metric label.
type Event struct {
	Vendor   string
	Outcome  string // forwarded, idempotent_replay, cap_hit, revoked, ...
	Decision string // a vendors.Decision: settle, unpriced, release, unknown; "" for a refusal
	Status   int
	Reserved money.Micros
	Cost     money.Micros
	Duration time.Duration
	// LedgerError is set when the ledger could not be written.
	LedgerError bool
}

// Observer receives an Event for every call the gate handles. It must be
// fast and must not block: it runs on the request path.
type Observer func(Event)
