package gate

import "github.com/keybrake/keybrake/internal/randid"

// newCallID returns "cl" and 22 random base62 characters (about 131 bits).
func newCallID() string {
	return "cl" + randid.Base62(22)
}

// newTagID returns "kt" and 22 random base62 characters: the tag written on
// the vendor object a call creates. It is drawn apart from the call id,
// which the client sees (X-Keybrake-Call-Id), and from anything the
// client sent.
func newTagID() string {
	return "kt" + randid.Base62(22)
}
