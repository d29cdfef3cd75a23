package graphemesplitter

import (
	"strings"
	"testing"
	"unicode/utf16"
)

// lengths are the clusters' lengths in UTF-16 code units, as
// grapheme-splitter's string lengths are.
func lengths(s string) []int {
	var out []int
	for _, g := range Split(s) {
		out = append(out, len(utf16.Encode([]rune(g))))
	}
	return out
}

func TestSplit(t *testing.T) {
	// Expected values are grapheme-splitter 1.0.4's (node, splitGraphemes).
	cases := []struct {
		in   string
		want []int
	}{
		{"", nil},
		{"ab", []int{1, 1}},
		{"e\u0301", []int{2}},
		{"\r\n", []int{2}},
		{"a\U0001F3FB", []int{1, 2}},                    // a skin tone after a letter: two
		{"a\u200d\u2764", []int{3}},                     // ZWJ then a Glue_After_Zwj: one
		{"\U0001F469\u200d\U0001F4BB", []int{5}},        // woman technologist
		{"\u2764\uFE0F\u200D\U0001F525", []int{3, 2}},   // heart on fire: two in Unicode 10
		{"\U0001F1FA\U0001F1F8\U0001F1EB", []int{4, 2}}, // a flag and a lone indicator
		{"\u0915\u094D\u0937", []int{2, 1}},             // no Indic conjuncts in Unicode 10
		{"\u1100\u1161\u11A8", []int{3}},                // Hangul L V T
		{"\U0001F9D1\U0001F3FD", []int{4}},
		{"x\U0001FAF1", []int{1, 2}},
	}
	for _, c := range cases {
		got := lengths(c.in)
		if len(got) != len(c.want) {
			t.Errorf("%+q: %v; want %v", c.in, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%+q: %v; want %v", c.in, got, c.want)
				break
			}
		}
	}
}

// TestSplitLongCluster: a cluster of 100,000 marks is one cluster (and
// takes linear time, where the original rescans it at every mark).
func TestSplitLongCluster(t *testing.T) {
	s := "e" + strings.Repeat("\u0301", 100_000) + "x"
	if got := lengths(s); len(got) != 2 || got[0] != 100_001 {
		t.Errorf("%d clusters; want the letter with its marks, then x", len(got))
	}
}

func TestSplitInvalidUTF8(t *testing.T) {
	s := "a\xffb"
	if got := Split(s); len(got) != 3 || strings.Join(got, "") != s {
		t.Errorf("Split(%q) = %q", s, got)
	}
}
