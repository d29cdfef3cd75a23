package vendors

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// BearerToken returns the token of an "Authorization: Bearer …" header.
func BearerToken(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(auth[len(prefix):])
	return tok, tok != ""
}

// BasicCredentials returns the user and password of an
// "Authorization: Basic …" header.
func BasicCredentials(r *http.Request) (user, password string, ok bool) {
	auth := r.Header.Get("Authorization")
	const prefix = "basic "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(raw), ":")
	return user, password, ok
}

// IsVaultKeyShaped reports whether s could be a vault key: only
// [A-Za-z0-9], 16 to 128 characters. Anything else is refused before a
// lookup, so odd bytes never reach a log or the ledger.
func IsVaultKeyShaped(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Where a client sends its credential (CredentialConfig.From).
const (
	FromBearer        = "bearer"         // Authorization: Bearer <vault key>
	FromBasicPassword = "basic_password" // Authorization: Basic <anything>:<vault key> (Twilio)
	FromBasicUser     = "basic_user"     // Authorization: Basic <vault key>:<anything>
	FromHeader        = "header"         // <Header>: <vault key>, e.g. X-Api-Key
)

// How the real secret goes upstream (InjectConfig.As).
const (
	InjectBearer = "bearer" // Authorization: Bearer <secret>
	InjectBasic  = "basic"  // Authorization: Basic <username>:<secret>
	InjectHeader = "header" // <Header>: <secret>
)

// CredentialConfig says where the client's SDK puts its credential, which is
// where it puts the vault key instead.
type CredentialConfig struct {
	// From is one of "bearer", "basic_password", "basic_user", "header".
	// Default "bearer".
	From string `json:"from,omitempty"`
	// Header is the header name for From "header" (e.g. "X-Api-Key").
	// Required for it, refused otherwise.
	Header string `json:"header,omitempty"`
}

// InjectConfig says how the real secret goes upstream.
type InjectConfig struct {
	// As is one of "bearer", "basic", "header". Default "bearer".
	As string `json:"as,omitempty"`
	// Header is the header name for As "header". Required for it, refused
	// otherwise.
	Header string `json:"header,omitempty"`
	// Username is the Basic user for As "basic" (the secret is the
	// password). Default empty. Refused for the other kinds.
	Username string `json:"username,omitempty"`
	// Secret is the real API key or password. Empty, the vendor is not
	// configured: SwapCredential refuses every call with 503.
	Secret string `json:"secret,omitempty"`
}

func (c CredentialConfig) from() string {
	if c.From == "" {
		return FromBearer
	}
	return c.From
}

func (c InjectConfig) as() string {
	if c.As == "" {
		return InjectBearer
	}
	return c.As
}

// Validate checks the credential configuration.
func (c CredentialConfig) Validate() error {
	switch c.from() {
	case FromBearer, FromBasicPassword, FromBasicUser:
		if c.Header != "" {
			return fmt.Errorf("credential: header is only for from \"header\"")
		}
	case FromHeader:
		if err := validHeaderName(c.Header); err != nil {
			return fmt.Errorf("credential: %v", err)
		}
	default:
		return fmt.Errorf("credential: from %q: want bearer, basic_password, basic_user or header", c.From)
	}
	return nil
}

// Validate checks the injection configuration.
func (c InjectConfig) Validate() error {
	if strings.ContainsAny(c.Secret, "\r\n") || strings.ContainsAny(c.Username, "\r\n") {
		return fmt.Errorf("inject: secret and username must be one line")
	}
	switch c.as() {
	case InjectBearer:
		if c.Header != "" || c.Username != "" {
			return fmt.Errorf("inject: header and username are not used with as \"bearer\"")
		}
	case InjectBasic:
		if c.Header != "" {
			return fmt.Errorf("inject: header is not used with as \"basic\"")
		}
		if strings.Contains(c.Username, ":") {
			return fmt.Errorf("inject: a Basic username cannot contain ':'")
		}
	case InjectHeader:
		if c.Username != "" {
			return fmt.Errorf("inject: username is not used with as \"header\"")
		}
		if err := validHeaderName(c.Header); err != nil {
			return fmt.Errorf("inject: %v", err)
		}
	default:
		return fmt.Errorf("inject: as %q: want bearer, basic or header", c.As)
	}
	return nil
}

func validHeaderName(h string) error {
	if h == "" {
		return fmt.Errorf("header name is required")
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return fmt.Errorf("header name %q has a character not allowed in a header name", h)
		}
	}
	if strings.HasPrefix(strings.ToLower(h), "x-keybrake-") {
		return fmt.Errorf("header name %q: X-Keybrake-* headers are Keybrake's own", h)
	}
	return nil
}

// Extract returns the vault key from where the configuration says the
// client puts it. ok is false when it is missing, malformed, or not shaped
// like a vault key (see IsVaultKeyShaped).
func (c CredentialConfig) Extract(r *http.Request) (string, bool) {
	var key string
	switch c.from() {
	case FromBearer:
		tok, ok := BearerToken(r)
		if !ok {
			return "", false
		}
		key = tok
	case FromBasicPassword:
		_, pw, ok := BasicCredentials(r)
		if !ok {
			return "", false
		}
		key = pw
	case FromBasicUser:
		user, _, ok := BasicCredentials(r)
		if !ok {
			return "", false
		}
		key = user
	case FromHeader:
		vals := r.Header.Values(c.Header)
		if len(vals) != 1 {
			return "", false
		}
		key = strings.TrimSpace(vals[0])
	default:
		return "", false
	}
	if !IsVaultKeyShaped(key) {
		return "", false
	}
	return key, true
}

// Remove deletes the header that carries the client's credential.
func (c CredentialConfig) Remove(r *http.Request) {
	switch c.from() {
	case FromHeader:
		r.Header.Del(c.Header)
	default:
		r.Header.Del("Authorization")
	}
}

// Apply puts the real secret on the request.
func (c InjectConfig) Apply(r *http.Request) {
	switch c.as() {
	case InjectBasic:
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Secret)))
	case InjectHeader:
		r.Header.Set(c.Header, c.Secret)
	default:
		r.Header.Set("Authorization", "Bearer "+c.Secret)
	}
}

// SwapCredential is the whole of an Authorize for a vendor whose credential
// is described by from and inject: it takes the vault key out, puts the real
// secret in, and checks nothing else on the request still carries the vault
// key (see Scrub).
func SwapCredential(r *http.Request, from CredentialConfig, inject InjectConfig) error {
	if inject.Secret == "" {
		return NotConfigured("Keybrake has no secret to send upstream for this vendor.")
	}
	key, ok := from.Extract(r)
	if !ok {
		return &Error{Status: http.StatusUnauthorized, Code: "keybrake_missing_credential",
			Message: "No vault key provided."}
	}
	from.Remove(r)
	inject.Apply(r)
	return Scrub(r, key)
}

// Scrub makes sure no trace of the vault key is left on a request about to
// go upstream: every header and trailer whose value contains it is dropped
// (a client may have sent it twice), and a request whose URL contains it is
// refused, since no rewrite of a URL can be trusted to mean the same thing
// upstream.
func Scrub(r *http.Request, key string) error {
	if key == "" {
		return nil
	}
	for _, h := range []http.Header{r.Header, r.Trailer} {
		for name, vals := range h {
			for _, v := range vals {
				if containsKey(v, key) {
					h.Del(name)
					break
				}
			}
		}
	}
	u := *r.URL
	if containsKey(u.String(), key) || containsKey(u.Path, key) || containsKey(r.Host, key) || containsKey(r.RequestURI, key) {
		return &Error{Status: http.StatusBadRequest, Code: "keybrake_key_in_url",
			Message: "The vault key must not appear in the URL."}
	}
	return nil
}

// containsKey reports whether s holds the key as is, or Basic-encoded in a
// header value Keybrake did not expect.
func containsKey(s, key string) bool {
	if strings.Contains(s, key) {
		return true
	}
	// "Basic base64(user:key)" in some other header (Proxy-Authorization).
	if f := strings.Fields(s); len(f) == 2 && strings.EqualFold(f[0], "basic") {
		if raw, err := base64.StdEncoding.DecodeString(f[1]); err == nil && strings.Contains(string(raw), key) {
			return true
		}
	}
	return false
}
