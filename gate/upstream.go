package gate

import (
	"cmp"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/vendors"
)

// prepareUpstream rewrites the request for the vendor: Keybrake's own
// headers out, the real secret in (Vendor.Authorize), every trace of the
// vault key out, and the call's tag on the object it creates.
func (g *Gate) prepareUpstream(r *http.Request, c *call) *refusal {
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-keybrake-") {
			r.Header.Del(name)
		}
	}
	// The response must arrive uncompressed for the gate to read it.
	r.Header.Del("Accept-Encoding")
	err := g.cfg.Vendor.Authorize(r)
	dropKeyHeaders(r, c.secret)
	if err != nil {
		return authorizeRefusal(err)
	}
	if keyInPath(r, c.secret) {
		return keyInURL()
	}
	return g.tag(r, c)
}

// keyInPath reports whether the vault key is still in the path the vendor
// will see, once Authorize has rewritten it.
func keyInPath(r *http.Request, secret string) bool {
	return secret != "" && (strings.Contains(r.URL.Path, secret) || strings.Contains(r.URL.RawPath, secret) ||
		strings.Contains(r.RequestURI, secret))
}

// dropKeyHeaders removes every header still carrying the vault key once
// the vendor has put the real secret in: the vault key never reaches the
// vendor.
func dropKeyHeaders(r *http.Request, secret string) {
	for _, h := range []http.Header{r.Header, r.Trailer} {
		for name, vals := range h {
			for _, v := range vals {
				if strings.Contains(v, secret) {
					h.Del(name)
					break
				}
			}
		}
	}
}

// tag writes the call's tag on the object it creates, when the vendor
// takes one (vendors.Tagger), and records it on the call before anything
// is forwarded: a fresh random tag, or the first attempt's for a retry or
// replay of one idempotent request (ledger TagCall). It runs after
// pricing and fingerprinting, which read the client's own body. A create
// that cannot carry the tag is refused: the reconciler could never show
// that such a call did nothing.
func (g *Gate) tag(r *http.Request, c *call) *refusal {
	t, ok := g.cfg.Vendor.(vendors.Tagger)
	if !ok {
		return nil
	}
	tag := vendors.CallTag{ID: newTagID(), RunLabel: c.key.RunLabel}
	out, err := t.Tag(r, c.path, c.body, tag)
	if err != nil {
		return authorizeRefusal(err)
	}
	if out == nil {
		return nil
	}
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	recorded, err := g.cfg.Store.TagCall(ctx, c.id, tag.ID, c.replayWindow)
	if err != nil {
		g.log.Error("recording a call's tag", zap.String("call_id", c.id), zap.Error(err))
		return unavailable()
	}
	if recorded != tag.ID {
		tag.ID = recorded
		if out, err = t.Tag(r, c.path, c.body, tag); err != nil || out == nil {
			return authorizeRefusal(cmp.Or(err, errors.New("the call's first attempt was tagged, this one cannot be")))
		}
	}
	setBody(r, out)
	return nil
}
