package vendors

import (
	"encoding/base64"
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
