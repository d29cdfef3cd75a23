package gate

import (
	"net/http"
	"strings"
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
	return g.writeTag(r, c)
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
