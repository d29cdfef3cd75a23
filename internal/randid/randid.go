// Package randid draws the random ids and secrets Keybrake hands out: call,
// key, token and event ids, vault keys and API tokens.
//
// It never returns an error. crypto/rand.Read cannot fail since Go 1.24:
// when the system cannot supply randomness it crashes the program, the only
// safe answer when no id or secret can be trusted. A replaced source (a
// test's) that fails makes Base62 panic for the same reason.
//
// crypto/rand.Text is not used: its base32 alphabet (A-Z, 2-7) would change
// the documented shape of ids and vault keys, a prefix and base62
// characters.
package randid

import (
	"crypto/rand"
	"io"
)

// Alphabet is the characters drawn: only [A-Za-z0-9], as twilio-go refuses
// any other character in a credential, and ids travel unescaped in paths.
const Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// source is where the random bytes come from; tests may replace it.
var source io.Reader = rand.Reader

// Base62 returns n characters drawn uniformly from Alphabet. Bytes of 248
// and over (248 = 4×62) are dropped so that b%62 is unbiased.
func Base62(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+4)
	for len(out) < n {
		if _, err := io.ReadFull(source, buf); err != nil {
			panic("randid: reading random bytes: " + err.Error())
		}
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, Alphabet[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}
