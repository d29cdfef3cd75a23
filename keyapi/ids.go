package keyapi

import "github.com/keybrake/keybrake/internal/randid"

// Key ids and vault key secrets are drawn from randid's base62, only
// [A-Za-z0-9]: twilio-go refuses any other character in a credential.
const (
	keyIDPrefix  = "vk"
	keyIDChars   = 22 // ~131 bits
	secretPrefix = "kb"
	secretChars  = 43 // ~256 bits

	// maxKeyIDLen bounds the key ids the API looks up.
	maxKeyIDLen = 64
)

// newKeyID returns "vk" + 22 random base62 characters.
func newKeyID() string {
	return keyIDPrefix + randid.Base62(keyIDChars)
}

// newSecret returns "kb" + 43 random base62 characters.
func newSecret() string {
	return secretPrefix + randid.Base62(secretChars)
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
