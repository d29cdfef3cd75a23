package gate

import (
	"time"

	"github.com/keybrake/keybrake/internal/randid"
)

// newCallID returns "cl", 9 base62 characters of the call's start (in byte
// order) and 13 random ones (about 77 bits): 24 characters, as before. Ids
// that sort by time are written at the end of the ledger's index on them;
// random ones were written all over it, a leaf page per call, which at 10
// million calls cost an embedded ledger a tenth of its spend throughput
// (BENCHMARKS.md, "The ledger at scale").
func newCallID(started time.Time) string {
	return "cl" + randid.Ordered(started, 13)
}

// newTagID returns "kt" and 22 random base62 characters: the tag written on
// the vendor object a call creates. It is drawn apart from the call id,
// which the client sees (X-Keybrake-Call-Id), and from anything the
// client sent.
func newTagID() string {
	return "kt" + randid.Base62(22)
}
