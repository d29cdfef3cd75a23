// Package graphemesplitter splits text into grapheme clusters exactly as
// the JavaScript library grapheme-splitter 1.0.4 does
// (github.com/orling/grapheme-splitter: UAX #29 with Unicode 10.0 data and
// that library's own reading of the rules).
//
// Twilio's SMS segment calculator (npm sms-segments-calculator,
// github.com/TwilioDevEd/message-segment-calculator) builds segments from
// those clusters, so counting segments as Twilio does needs them, not
// today's Unicode: it differs from current segmenters such as
// github.com/rivo/uniseg on real text. "a" + a skin tone is two clusters
// here and one in Unicode 15; "❤️‍🔥" is two here and one in Unicode 15;
// "a" + ZWJ + "❤" is one here and two in Unicode 15; marks added after
// Unicode 10 do not extend a cluster here. integration/sms_segments_test.go
// checks this port against the library itself.
package graphemesplitter

import "sort"

// Property is a grapheme break property as grapheme-splitter 1.0.4
// assigns it (its numbering).
type Property uint8

// The properties, in grapheme-splitter's order.
const (
	CR Property = iota
	LF
	Control
	Extend
	RegionalIndicator
	SpacingMark
	L
	V
	T
	LV
	LVT
	Other
	Prepend
	EBase
	EModifier
	ZWJ
	GlueAfterZwj
	EBaseGAZ
	numProperties
)

var propertyNames = [numProperties]string{"CR", "LF", "Control", "Extend", "Regional_Indicator", "SpacingMark",
	"L", "V", "T", "LV", "LVT", "Other", "Prepend", "E_Base", "E_Modifier", "ZWJ", "Glue_After_Zwj", "E_Base_GAZ"}

// String is the property's name as grapheme-splitter and UAX #29 spell it.
func (p Property) String() string {
	if p < numProperties {
		return propertyNames[p]
	}
	return "Property(?)"
}

type propertyRange struct {
	lo, hi rune
	p      Property
}

// PropertyOf is the grapheme break property of r.
func PropertyOf(r rune) Property {
	i := sort.Search(len(table), func(i int) bool { return table[i].hi >= r })
	if i < len(table) && table[i].lo <= r {
		return table[i].p
	}
	return Other
}

// Split returns the grapheme clusters of s, in order; their concatenation
// is s. Bytes of s that are not UTF-8 are taken as U+FFFD, one each.
func Split(s string) []string {
	runes := []rune(s)
	// offsets[i] is the byte offset of runes[i] in s.
	offsets := make([]int, len(runes)+1)
	i := 0
	for off := range s {
		offsets[i] = off
		i++
	}
	offsets[len(runes)] = len(s)
	props := make([]Property, len(runes))
	for i, r := range runes {
		props[i] = PropertyOf(r)
	}
	var out []string
	c := new(cluster)
	for start := 0; start < len(runes); {
		end := nextBreak(c, props, start)
		out = append(out, s[offsets[start]:offsets[end]])
		start = end
	}
	return out
}

// nextBreak is grapheme-splitter's nextBreak over code points: the index
// of the first break after index. c is scratch space.
func nextBreak(c *cluster, props []Property, index int) int {
	if index >= len(props)-1 {
		return len(props)
	}
	c.reset(props[index])
	for i := index + 1; i < len(props); i++ {
		if c.shouldBreak(props[i]) {
			return i
		}
		c.push(props[i])
	}
	return len(props)
}

// cluster is grapheme-splitter's `[start].concat(mid)`, the properties of
// the cluster so far, with what its shouldBreak scans for kept up to date
// as it grows, so that a long cluster costs linear time, not quadratic.
type cluster struct {
	all []Property
	// last[p] is the index of p's last occurrence in all, -1 if none.
	last [numProperties]int
	// firstNotExtend and firstNotRI are the first index from 1 whose
	// property is not Extend (not Regional_Indicator); -1 if none.
	firstNotExtend, firstNotRI int
	// lastNotExtend is the last index whose property is not Extend, -1 if
	// none.
	lastNotExtend int
}

// reset makes c the cluster of start alone.
func (c *cluster) reset(start Property) {
	c.all = c.all[:0]
	c.firstNotExtend, c.firstNotRI, c.lastNotExtend = -1, -1, -1
	for p := range c.last {
		c.last[p] = -1
	}
	c.push(start)
}

func (c *cluster) push(p Property) {
	i := len(c.all)
	c.all = append(c.all, p)
	c.last[p] = i
	if p != Extend {
		c.lastNotExtend = i
	}
	if i >= 1 && p != Extend && c.firstNotExtend < 0 {
		c.firstNotExtend = i
	}
	if i >= 1 && p != RegionalIndicator && c.firstNotRI < 0 {
		c.firstNotRI = i
	}
}

// allFrom1 reports whether every element of all[1:end] is what first
// (the first index from 1 that is not it, -1 if none) says.
func allFrom1(first, end int) bool { return first < 0 || first >= end }

func in(p Property, set ...Property) bool {
	for _, q := range set {
		if p == q {
			return true
		}
	}
	return false
}

// shouldBreak is grapheme-splitter's shouldBreak(start, mid, end) with
// all = c.all + [next], rule by rule in its order.
func (c *cluster) shouldBreak(next Property) bool {
	n := len(c.all) // next's index in all
	start, previous := c.all[0], c.all[n-1]
	lastIndex := func(p Property) int {
		if next == p {
			return n
		}
		return c.last[p]
	}

	// Lookahead terminator for GB10.
	if e := lastIndex(EModifier); e > 1 && allFrom1(c.firstNotExtend, e) && !in(start, Extend, EBase, EBaseGAZ) {
		return true
	}
	// Lookahead terminator for GB12 and GB13.
	if ri := lastIndex(RegionalIndicator); ri > 0 && allFrom1(c.firstNotRI, ri) && !in(previous, Prepend, RegionalIndicator) {
		return true
	}
	switch {
	case previous == CR && next == LF: // GB3
		return false
	case in(previous, Control, CR, LF): // GB4
		return true
	case in(next, Control, CR, LF): // GB5
		return true
	case previous == L && in(next, L, V, LV, LVT): // GB6
		return false
	case in(previous, LV, V) && in(next, V, T): // GB7
		return false
	case in(previous, LVT, T) && next == T: // GB8
		return false
	case in(next, Extend, ZWJ): // GB9
		return false
	case next == SpacingMark: // GB9a
		return false
	case previous == Prepend: // GB9b
		return false
	}
	// GB10, as grapheme-splitter reads it: the element before the last
	// Extend (or before next, with no Extend) is an emoji base, and
	// everything after it up to next is Extend.
	p := n - 1
	if x := lastIndex(Extend); x >= 0 {
		p = x - 1
	}
	if p >= 0 && in(c.all[p], EBase, EBaseGAZ) && c.lastNotExtend < p+1 && next == EModifier {
		return false
	}
	if previous == ZWJ && in(next, GlueAfterZwj, EBaseGAZ) { // GB11
		return false
	}
	if c.last[RegionalIndicator] >= 1 { // GB12 and GB13: mid holds a regional indicator
		return true
	}
	if previous == RegionalIndicator && next == RegionalIndicator {
		return false
	}
	return true // GB999
}
