package vendors

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// CallTag is what Keybrake writes on the vendor object a forwarded call
// creates, where the vendor lets the call carry it (Stripe metadata, Resend
// tags), so that the reconciler can later ask the vendor what became of a
// call whose answer was lost.
type CallTag struct {
	// ID is TagID of the call.
	ID string
	// RunLabel is the vault key's run label ("" for none).
	RunLabel string
}

// TagID is the id written on the vendor's object for a call: the call id,
// or, for a call with an idempotency key, an id derived from the vault key
// and that idempotency key ("ik" and 24 hex digits). Every attempt of one
// idempotent request then sends the vendor the same parameters, which it
// requires of a retry or replay (Stripe answers a changed one with an
// idempotency_error), and the reconciler can find the object from any of
// the attempts' records.
func TagID(callID, keyID, idempotencyKey string) string {
	if idempotencyKey == "" {
		return callID
	}
	sum := sha256.Sum256([]byte(keyID + "\x00" + idempotencyKey))
	return "ik" + hex.EncodeToString(sum[:12])
}

// Tagger is a vendor that can write a CallTag on the object a call creates.
type Tagger interface {
	// Tag returns the body to forward with tag written in it. ok is false
	// when the call takes no tag, or when adding one would break one of
	// the vendor's limits or touch the client's own keys: the body is then
	// forwarded as it came. body is the client's body, already priced and
	// fingerprinted, and path the canonical path.
	Tag(r *http.Request, path string, body []byte, tag CallTag) (out []byte, ok bool)
}
