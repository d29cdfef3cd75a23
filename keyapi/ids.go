package keyapi

import (
	"crypto/rand"
	"io"
)

// Key ids and vault key secrets use only [A-Za-z0-9]: twilio-go refuses any
// other character in a credential.
const (
	base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

	keyIDPrefix  = "vk"
	keyIDChars   = 22 // ~131 bits
	secretPrefix = "kb"
	secretChars  = 43 // ~256 bits

	// maxKeyIDLen bounds the key ids the API looks up.
	maxKeyIDLen = 64
)

// randReader is the source of randomness; tests may replace it.
var randReader io.Reader = rand.Reader

// randomBase62 returns n characters drawn uniformly from base62. Bytes of
// 248 and over (248 = 4×62) are dropped so that b%62 is unbiased.
func randomBase62(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+4)
	for len(out) < n {
		if _, err := io.ReadFull(randReader, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

// newKeyID returns "vk" + 22 random base62 characters.
func newKeyID() (string, error) {
	s, err := randomBase62(keyIDChars)
	return keyIDPrefix + s, err
}

// newSecret returns "kb" + 43 random base62 characters.
func newSecret() (string, error) {
	s, err := randomBase62(secretChars)
	return secretPrefix + s, err
}

// plausibleKeyID tells whether id could be a key id, so that garbage is
// answered 404 without a trip to the ledger.
func plausibleKeyID(id string) bool {
	if id == "" || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !isBase62(id[i]) {
			return false
		}
	}
	return true
}

func isBase62(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}
