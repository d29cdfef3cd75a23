package gate

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/vendors"
)

// read reads the request body for pricing (and puts it back for the
// upstream), adds the scope the vendor records after the path, and refuses
// a request carrying the vault key where the vendor would keep it.
func (g *Gate) read(r *http.Request, c *call) *refusal {
	body, f := g.readBody(r)
	if f != nil {
		return f
	}
	c.body = body
	if sr, ok := g.cfg.Vendor.(vendors.ScopeRecorder); ok {
		if scope := sr.RecordedScope(r, body); scope != "" {
			c.recorded = text.Truncate(c.recorded+"?"+scope, 512)
		}
	}
	return misplacedKey(r, c.secret, body)
}

// readBody reads the request body, up to MaxRequestBody, and puts it back
// for the upstream.
func (g *Gate) readBody(r *http.Request) ([]byte, *refusal) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.cfg.MaxRequestBody+1))
	_ = r.Body.Close()
	if err != nil {
		return nil, bodyUnreadable()
	}
	if int64(len(body)) > g.cfg.MaxRequestBody {
		return nil, bodyTooLarge()
	}
	setBody(r, body)
	return body, nil
}

// misplacedKey refuses a request that carries the vault key anywhere but
// where the vendor's SDK puts its credential: in the query string (it would
// reach the vendor and its logs) or in the body (a metadata field the
// vendor would store). The path is checked once the vendor has rewritten it
// (keyInPath): twilio-go puts its username, which may be the vault key, in
// the path as the account SID, and the Twilio vendor replaces it. Headers
// that carry it are dropped when the call is forwarded (dropKeyHeaders).
func misplacedKey(r *http.Request, secret string, body []byte) *refusal {
	if secret == "" {
		return nil
	}
	unescaped, _ := url.QueryUnescape(r.URL.RawQuery)
	if strings.Contains(r.URL.RawQuery, secret) || strings.Contains(unescaped, secret) {
		return keyInURL()
	}
	if bytes.Contains(body, []byte(secret)) {
		return keyInBody()
	}
	return nil
}

// setBody replaces the body forwarded upstream.
func setBody(r *http.Request, body []byte) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Del("Transfer-Encoding")
	r.TransferEncoding = nil
}
