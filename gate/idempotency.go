package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/keybrake/keybrake/vendors"
)

// maxIdempotencyKey is the longest idempotency key accepted (Stripe's limit).
const maxIdempotencyKey = 255

// idempotency reads the call's idempotency key and, when the vendor honours
// it for this method, the replay window and the request's fingerprint: a
// replay is free only when it is the same request as its original.
func (g *Gate) idempotency(r *http.Request, c *call) *refusal {
	idem, ok := g.idem.header(r)
	if !ok {
		return manyIdempotencyKeys()
	}
	if idem == "" {
		return nil
	}
	if len(idem) > maxIdempotencyKey || !utf8.ValidString(idem) || strings.ContainsFunc(idem, isControl) {
		return badIdempotencyKey()
	}
	c.idemKey = idem
	if g.idem.Honours(r.Method, c.path) {
		c.replayWindow = g.idem.Window
		c.fingerprint = fingerprint(r, c.path, c.body, g.idem.ScopeHeaders)
	}
	return nil
}

// header returns the idempotency key the client sent, "" for none; ok is
// false when it sent more than one, which the vendor would read one way and
// Keybrake perhaps another.
func (i idempotencyPolicy) header(r *http.Request) (string, bool) {
	vals := r.Header.Values(i.name())
	switch len(vals) {
	case 0:
		return "", true
	case 1:
		return vals[0], true
	default:
		return "", false
	}
}

// idempotencyPolicy is the vendor's idempotency behaviour; the zero value
// honours nothing.
type idempotencyPolicy struct{ vendors.Idempotency }

func newIdempotencyPolicy(v vendors.Vendor) idempotencyPolicy {
	if h, ok := v.(vendors.IdempotencyHonouring); ok {
		return idempotencyPolicy{h.Idempotency()}
	}
	return idempotencyPolicy{}
}

// name is the header recorded as the call's idempotency key: the vendor's,
// or the conventional one for a vendor that honours none (it is still
// recorded, and never makes a replay free).
func (i idempotencyPolicy) name() string {
	if i.Header != "" {
		return i.Header
	}
	return "Idempotency-Key"
}

// fingerprint hashes what makes two requests the same request to the
// vendor: method, canonical path, query, the headers that scope the
// vendor's idempotency keys (Stripe-Account), and the body.
func fingerprint(r *http.Request, path string, body []byte, scope []string) string {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	write(r.Method)
	write(path)
	write(r.URL.RawQuery)
	for _, name := range scope {
		write(name)
		write(strings.Join(r.Header.Values(name), "\x00"))
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
