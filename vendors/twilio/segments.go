package twilio

import (
	"unicode/utf16"

	"github.com/keybrake/keybrake/internal/graphemesplitter"
)

// Encodings of an SMS body.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// A segment carries 140 octets: 160 GSM-7 septets or 70 UCS-2 code units.
// Once a message needs more than one, each segment gives 6 octets to the
// concatenation header, leaving 153 septets (1,072 bits) or 67 code units.
const (
	gsmSingle  = 160
	gsmMulti   = 153
	ucs2Single = 70
	ucs2Multi  = 67
)

// gsmBasic is the GSM 03.38 basic character set (one septet each), without
// the escape character, as Twilio maps Unicode to it.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtended is the GSM 03.38 extension table: each character takes two
// septets (the escape and itself).
const gsmExtended = "\f^{}\\[~]|€"

var gsmWidth = func() map[rune]int {
	m := map[rune]int{}
	for _, c := range gsmBasic {
		m[c] = 1
	}
	for _, c := range gsmExtended {
		m[c] = 2
	}
	return m
}()

// Segments returns how many SMS segments Twilio bills for a message body
// and the encoding it is sent in, as Twilio's segment calculator
// (github.com/TwilioDevEd/message-segment-calculator, npm
// sms-segments-calculator) counts them, Smart Encoding off:
//
//   - the body is split into characters (grapheme clusters, as the
//     calculator's grapheme-splitter finds them; CR LF is two);
//   - a body whose characters are all single GSM-7 characters is sent as
//     GSM-7: 160 septets in one segment, 153 per segment when multipart, an
//     extension character ({ } [ ] ~ \ | ^ € and form feed) two septets;
//   - any other character (one outside GSM-7, or a character of more than
//     one UTF-16 code unit such as e + U+0301 or an emoji) makes the whole
//     body UCS-2: 70 UTF-16 code units in one segment, 67 per segment when
//     multipart;
//   - a character is never split across segments.
//
// An empty body is one segment. The packing follows the calculator step
// by step, including what it does with a character longer than a segment
// (it opens a new segment for it, even after an empty first one).
func Segments(body string) (segments int, encoding string) {
	segments, encoding, _ = countSegments(body)
	return segments, encoding
}

// countSegments is Segments, and whether the calculator's packing left a
// segment holding more than a segment can: a character longer than a
// segment, or the second segment overfilled when the first gave it its
// last characters (10 × a, then two characters of 60 code units each: the
// calculator says 2 segments for 130 code units). Twilio cannot send such
// a count, and what it bills instead is not documented.
func countSegments(body string) (segments int, encoding string, overfull bool) {
	chars := smsCharacters(body)
	widths := make([]int, len(chars))
	encoding = EncodingGSM7
	for i, c := range chars {
		w, ok := gsmWidth[[]rune(c)[0]]
		if !ok || len(utf16.Encode([]rune(c))) != 1 {
			encoding = EncodingUCS2
			break
		}
		widths[i] = w
	}
	single, multi := gsmSingle, gsmMulti
	if encoding == EncodingUCS2 {
		single, multi = ucs2Single, ucs2Multi
		for i, c := range chars {
			widths[i] = len(utf16.Encode([]rune(c)))
		}
	}
	segments, overfull = packSegments(widths, single, multi)
	return segments, encoding, overfull
}

// smsCharacters are the characters the calculator sees in body.
func smsCharacters(body string) []string {
	var out []string
	for _, g := range graphemesplitter.Split(body) {
		if g == "\r\n" {
			out = append(out, "\r", "\n")
			continue
		}
		out = append(out, g)
	}
	return out
}

// packSegments is the calculator's segment builder, in units: characters
// fill the first segment up to single; the first that does not fit opens
// a second segment, the first segment shrinks to multi and gives its last
// characters to the second, and that character follows them (wherever it
// then stands). Every later segment holds multi; a character that does not
// fit in what is left of the current one opens the next. overfull is
// whether a segment ended up holding more than multi (or the first more
// than single).
func packSegments(widths []int, single, multi int) (segments int, overfull bool) {
	segments = 1
	var first []int // the first segment's characters, while it is the only one
	used, capacity := 0, single
	for _, w := range widths {
		if capacity-used < w {
			segments++
			if segments == 2 {
				// The first segment gets its header: move its last
				// characters to the second until it holds multi.
				moved := 0
				for used > multi {
					last := first[len(first)-1]
					first = first[:len(first)-1]
					used -= last
					moved += last
				}
				used, capacity = moved, multi
			} else {
				used = 0
			}
			used += w
			overfull = overfull || used > capacity
			continue
		}
		if segments == 1 {
			first = append(first, w)
		}
		used += w
	}
	return segments, overfull
}
