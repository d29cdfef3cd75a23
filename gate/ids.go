package gate

import (
	"crypto/rand"
	"math/big"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newCallID returns "cl" and 22 random base62 characters (about 131 bits).
func newCallID() string {
	return "cl" + randomBase62(22)
}

// newTagID returns "kt" and 22 random base62 characters: the tag written on
// the vendor object a call creates. It is drawn apart from the call id,
// which the client sees (X-Keybrake-Call-Id), and from anything the
// client sent.
func newTagID() string {
	return "kt" + randomBase62(22)
}

// randomBase62 returns n unbiased random base62 characters.
func randomBase62(n int) string {
	b := make([]byte, n)
	var buf [64]byte
	i := 0
	for i < n {
		if _, err := rand.Read(buf[:]); err != nil {
			// crypto/rand does not fail on supported platforms; a fallback
			// through math/big keeps the contract if it ever does.
			v, _ := rand.Int(rand.Reader, big.NewInt(62))
			b[i] = base62[v.Int64()]
			i++
			continue
		}
		for _, x := range buf {
			// 248 = 4*62: rejecting the rest keeps the draw unbiased.
			if x < 248 && i < n {
				b[i] = base62[x%62]
				i++
			}
		}
	}
	return string(b)
}
