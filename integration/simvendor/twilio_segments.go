package simvendor

import (
	"unicode"
	"unicode/utf16"
)

// SMS segments as Twilio bills them
// (https://www.twilio.com/docs/glossary/what-is-gsm-7-character-encoding,
// and Twilio's segment calculator, github.com/TwilioDevEd/message-segment-calculator):
//
//   - a body of GSM-7 characters only is sent as GSM-7: 160 septets in a
//     single segment, 153 per segment once it needs more than one (a 6-byte
//     User Data Header takes the rest);
//   - the extension characters \f ^ { } \ [ ~ ] | € take two septets (an
//     escape and the character) and are never split across segments;
//   - any other character makes the whole body UCS-2: 70 UTF-16 code units
//     in a single segment, 67 per segment otherwise; a character (a grapheme
//     in Twilio's calculator) is never split across segments;
//   - Smart Encoding (which swaps look-alike Unicode for GSM-7) is off, as it
//     is by default.
//
// Simplification: graphemes are approximated (combining marks, variation
// selectors, emoji modifiers, zero-width joiner sequences and regional
// indicator pairs stay with their base); a grapheme of more than one code
// unit forces UCS-2 like Twilio's calculator does.

// gsm7 is GSM 03.38's basic set (one septet) as Twilio maps Unicode to it.
const gsm7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsm7Ext is the extension table (two septets each).
const gsm7Ext = "\f^{}\\[~]|€"

var gsmSeptets = func() map[rune]int {
	m := map[rune]int{}
	for _, r := range gsm7 {
		m[r] = 1
	}
	for _, r := range gsm7Ext {
		m[r] = 2
	}
	return m
}()

// Segment sizes.
const (
	gsmSingle, gsmMulti   = 160, 153
	ucs2Single, ucs2Multi = 70, 67
)

// SMSSegments returns how many segments Twilio bills for body and whether
// it is sent as UCS-2. An empty body is one segment.
func SMSSegments(body string) (segments int, ucs2 bool) {
	units := graphemes(body)
	sizes := make([]int, len(units))
	for i, g := range units {
		rs := []rune(g)
		if n, ok := gsmSeptets[rs[0]]; ok && len(rs) == 1 {
			sizes[i] = n
			continue
		}
		ucs2 = true
		break
	}
	single, multi := gsmSingle, gsmMulti
	if ucs2 {
		single, multi = ucs2Single, ucs2Multi
		for i, g := range units {
			sizes[i] = len(utf16.Encode([]rune(g)))
		}
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	if total <= single {
		return 1, ucs2
	}
	segments, used := 1, 0
	for _, n := range sizes {
		if used+n > multi && used > 0 {
			segments++
			used = 0
		}
		used += n
	}
	return segments, ucs2
}

// graphemes splits s into approximate user-perceived characters.
func graphemes(s string) []string {
	var out []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		j := i + 1
		if rs[i] == '\r' && j < len(rs) && rs[j] == '\n' {
			// CR LF is one grapheme, but GSM-7 sends it as two characters.
			out = append(out, "\r", "\n")
			i = j + 1
			continue
		}
		if isRegional(rs[i]) && j < len(rs) && isRegional(rs[j]) {
			j++
		}
		for j < len(rs) {
			switch {
			case isExtend(rs[j]):
				j++
			case rs[j] == 0x200D && j+1 < len(rs): // zero-width joiner
				j += 2
			default:
				goto done
			}
		}
	done:
		out = append(out, string(rs[i:j]))
		i = j
	}
	return out
}

func isRegional(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

func isExtend(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me) ||
		(r >= 0xFE00 && r <= 0xFE0F) || // variation selectors
		(r >= 0x1F3FB && r <= 0x1F3FF) || // emoji skin tone modifiers
		(r >= 0xE0020 && r <= 0xE007F) // tag characters
}
