package text

import (
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		// "ж" is 2 bytes: a cut never splits it.
		{"жжжжжж", 8, "жж…"},
		{"жжжжжж", 9, "жжж…"},
		{"😀😀😀", 7, "😀…"},
		{"😀😀😀", 6, "…"},
		{"abc", 2, ""},
		{"", 0, ""},
	} {
		got := Truncate(c.s, c.n)
		if got != c.want || len(got) > c.n || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q; want %q", c.s, c.n, got, c.want)
		}
	}
}
