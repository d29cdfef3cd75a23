package declared

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/vendors"
)

// IdempotencyConfig declares that the vendor honours an idempotency
// header: a request repeated with the same key is answered from the
// vendor's cache and moves no money. Only then does Keybrake forward a true
// replay (same method, path, body and scope headers as an original it
// forwarded with a reservation, within Window) free, and refuse the same
// key with another request before forwarding. A vendor with no such
// declaration never gets a free replay: Keybrake cannot know it honours the
// header at all.
type IdempotencyConfig struct {
	// Header is the request header carrying the key, e.g.
	// "Idempotency-Key". Required.
	Header string `json:"header"`
	// Methods are the methods on which the vendor honours it. Default
	// ["POST"].
	Methods []string `json:"methods,omitempty"`
	// Paths, when given, are the only paths on which the vendor honours
	// it (patterns with "*" segments, e.g. "/emails"). Default: every
	// path.
	Paths []string `json:"paths,omitempty"`
	// Window is how long the vendor keeps a key (e.g. "24h"); never longer
	// than the vendor documents. Required, at most 30 days.
	Window Duration `json:"window"`
	// ScopeHeaders are request headers that scope keys at the vendor (an
	// account header): part of what makes two requests the same. Default
	// none.
	ScopeHeaders []string `json:"scope_headers,omitempty"`
}

// maxWindow bounds a declared replay window.
const maxWindow = 30 * 24 * time.Hour

// Duration is a time.Duration that reads, in JSON, either a number of
// nanoseconds or a Go duration string ("24h"), as Caddy's durations do.
type Duration time.Duration

// UnmarshalJSON reads a number of nanoseconds or a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %v", s, err)
		}
		*d = Duration(v)
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want nanoseconds or a string such as \"24h\"", s)
	}
	*d = Duration(n)
	return nil
}

var headerToken = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// validate checks the declaration against the vendor's credential header.
func (c IdempotencyConfig) validate(cred vendors.CredentialConfig) error {
	if !headerToken.MatchString(c.Header) {
		return fmt.Errorf("idempotency: header %q is not a header name", c.Header)
	}
	h := textproto.CanonicalMIMEHeaderKey(c.Header)
	if h == "Authorization" || (cred.Header != "" && h == textproto.CanonicalMIMEHeaderKey(cred.Header)) {
		return fmt.Errorf("idempotency: header %s carries the credential", h)
	}
	w := time.Duration(c.Window)
	if w <= 0 || w > maxWindow {
		return fmt.Errorf("idempotency: window %s: want a duration above 0 and at most 720h", w)
	}
	for _, m := range c.Methods {
		if err := allowlist.CheckMethod(m); err != nil {
			return fmt.Errorf("idempotency: unknown method %q", m)
		}
	}
	for _, p := range c.Paths {
		if err := allowlist.CheckPath(p); err != nil {
			return fmt.Errorf("idempotency: path %q: want a pattern such as /emails or /orders/*", p)
		}
	}
	for _, s := range c.ScopeHeaders {
		if !headerToken.MatchString(s) {
			return fmt.Errorf("idempotency: scope header %q is not a header name", s)
		}
	}
	return nil
}

// Idempotency implements vendors.IdempotencyHonouring. Without a
// declaration it is the zero value, which honours nothing: no free
// replays.
func (v *Vendor) Idempotency() vendors.Idempotency {
	c := v.c.cfg.Idempotency
	if c == nil {
		return vendors.Idempotency{}
	}
	methods := c.Methods
	if len(methods) == 0 {
		methods = []string{http.MethodPost}
	}
	scope := make([]string, len(c.ScopeHeaders))
	for i, s := range c.ScopeHeaders {
		scope[i] = textproto.CanonicalMIMEHeaderKey(s)
	}
	mismatch, inFlight := vendors.IdempotencyErrors(v.c.cfg.ErrorFormat)
	return vendors.Idempotency{
		Header:       textproto.CanonicalMIMEHeaderKey(c.Header),
		Methods:      append([]string{}, methods...),
		Paths:        append([]string{}, c.Paths...),
		Window:       time.Duration(c.Window),
		ScopeHeaders: scope,
		Mismatch:     mismatch,
		InFlight:     inFlight,
	}
}

var _ vendors.IdempotencyHonouring = (*Vendor)(nil)
