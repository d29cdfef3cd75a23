// Package text holds the string helpers more than one package needs.
package text

import "unicode/utf8"

// Truncate returns s if it is at most n bytes long; else s cut at a rune
// boundary and ended with "…", n bytes at the most in all, so that a bound
// on what is stored or shown holds and the cut is seen.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	if n < len(mark) {
		return ""
	}
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
