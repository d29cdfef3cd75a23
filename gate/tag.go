package gate

import (
	"errors"
	"net/http"

	"github.com/keybrake/keybrake/vendors"
)

// tag draws the call's tag when the vendor writes one on the object the
// call creates (vendors.Tagger), and refuses, before anything is reserved,
// a create that cannot carry it (the client set a keybrake_ key, emptied
// the map, left no room): the reconciler could never show that such a
// call did nothing. Reserve records the tag with the reservation.
func (g *Gate) tag(r *http.Request, c *call) *refusal {
	t, ok := g.cfg.Vendor.(vendors.Tagger)
	if !ok {
		return nil
	}
	id := newTagID()
	out, err := t.Tag(r, c.path, c.body, vendors.CallTag{ID: id, RunLabel: c.key.RunLabel})
	if err != nil {
		return estimateRefusal(err)
	}
	if out != nil {
		c.tag = id
	}
	return nil
}

// writeTag writes on the body to forward the tag Reserve recorded: the
// call's own, or its idempotent request's first attempt's, so that every
// attempt sends the vendor the same parameters. It runs after pricing and
// fingerprinting, which read the client's own body.
func (g *Gate) writeTag(r *http.Request, c *call) *refusal {
	if c.tag == "" {
		return nil
	}
	t, _ := g.cfg.Vendor.(vendors.Tagger)
	recorded := c.reservation.Tag
	if recorded == "" {
		// The ledger did not record it: forwarding would create an
		// object no one could find again.
		return unavailable()
	}
	out, err := t.Tag(r, c.path, c.body, vendors.CallTag{ID: recorded, RunLabel: c.key.RunLabel})
	if err != nil || out == nil {
		return authorizeRefusal(errors.Join(err, errors.New("keybrake could not write the call's tag")))
	}
	setBody(r, out)
	return nil
}
