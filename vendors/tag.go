package vendors

import (
	"net/http"
)

// CallTag is what Keybrake writes on the vendor object a forwarded call
// creates, where the vendor lets the call carry it (Stripe metadata, Resend
// tags), so that the reconciler can later ask the vendor what became of a
// call whose answer was lost.
type CallTag struct {
	// ID is the call's tag: random, drawn by the gate for each call and
	// recorded with its reservation (ledger.ReserveRequest.Tag), never
	// derived from anything the client sent. Only the attempts of one
	// idempotent request share one, the first attempt's, so the vendor
	// sees the same parameters on every attempt.
	ID string
	// RunLabel is the vault key's run label ("" for none).
	RunLabel string
}

// ReservedPrefix starts every metadata key and tag name Keybrake writes.
// A client may not write, change or remove one: the reconciler trusts a
// tag only because no key holder can set it.
const ReservedPrefix = "keybrake_"

// Tagger is a vendor that writes a CallTag on the object a call creates.
type Tagger interface {
	// Tag returns the body to forward with tag written in it, or nil when
	// the call creates nothing that takes a tag. A call that creates such
	// an object but cannot carry the tag (the client set a keybrake_ key,
	// emptied the map, or left no room for it) is an error, a *Error in
	// the vendor's format: the gate refuses it before forwarding, since a
	// call whose object carries no tag could never be proven to have done
	// nothing. body is the client's body, already priced and
	// fingerprinted, and path the canonical path.
	Tag(r *http.Request, path string, body []byte, tag CallTag) ([]byte, error)
}
