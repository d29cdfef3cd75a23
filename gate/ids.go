package gate

import "github.com/keybrake/keybrake/internal/randid"

// newCallID returns "cl" and 22 random base62 characters (about 131 bits).
func newCallID() string {
	return "cl" + randid.Base62(22)
}
