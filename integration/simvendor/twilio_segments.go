package simvendor

import (
	"unicode/utf16"

	"github.com/keybrake/keybrake/internal/graphemesplitter"
)

// SMS segments as Twilio bills them
// (https://www.twilio.com/docs/glossary/what-is-gsm-7-character-encoding,
// and Twilio's segment calculator, github.com/TwilioDevEd/message-segment-calculator,
// npm sms-segments-calculator), written apart from Keybrake's pricing
// (vendors/twilio) and after the calculator's own model: a segment is 140
// octets (1,120 bits); a character costs 7 bits per GSM-7 septet or 16 per
// UTF-16 code unit; a concatenated message puts a 6-octet header in every
// segment.
//
//   - Characters are grapheme clusters as the calculator's grapheme-splitter
//     1.0.4 finds them (internal/graphemesplitter is a port of it), CR LF
//     being two;
//   - a body of single GSM-7 characters only is GSM-7 (the extension
//     characters \f ^ { } \ [ ~ ] | € take two septets: an escape and the
//     character); anything else makes the whole body UCS-2;
//   - a character is never split across segments;
//   - Smart Encoding (which swaps look-alike Unicode for GSM-7) is off, as it
//     is by default.

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

const (
	segmentBits = 140 * 8
	headerBits  = 6 * 8
)

// smsSegment is one segment being filled: the bits of its characters, and
// whether it has its concatenation header.
type smsSegment struct {
	chars  []int
	header bool
}

func (s *smsSegment) bits() int {
	n := 0
	if s.header {
		n = headerBits
	}
	for _, b := range s.chars {
		n += b
	}
	return n
}

// SMSSegments returns how many segments Twilio bills for body and whether
// it is sent as UCS-2. An empty body is one segment.
func SMSSegments(body string) (segments int, ucs2 bool) {
	var chars []string
	for _, g := range graphemesplitter.Split(body) {
		if g == "\r\n" {
			chars = append(chars, "\r", "\n")
		} else {
			chars = append(chars, g)
		}
	}
	for _, c := range chars {
		rs := []rune(c)
		if _, ok := gsmSeptets[rs[0]]; !ok || len(rs) > 1 || rs[0] > 0xFFFF {
			ucs2 = true
			break
		}
	}
	bits := make([]int, len(chars))
	for i, c := range chars {
		if ucs2 {
			bits[i] = 16 * len(utf16.Encode([]rune(c)))
		} else {
			bits[i] = 7 * gsmSeptets[[]rune(c)[0]]
		}
	}
	// The calculator's builder: a character that does not fit opens a
	// segment with a header; the first time, the first segment gets its
	// header too and hands the characters it no longer holds to the new one.
	segs := []*smsSegment{{}}
	for _, b := range bits {
		cur := segs[len(segs)-1]
		if segmentBits-cur.bits() < b {
			next := &smsSegment{header: true}
			if prev := cur; !prev.header {
				prev.header = true
				var handed []int
				for prev.bits() > segmentBits {
					handed = append([]int{prev.chars[len(prev.chars)-1]}, handed...)
					prev.chars = prev.chars[:len(prev.chars)-1]
				}
				next.chars = append(next.chars, handed...)
			}
			segs = append(segs, next)
			cur = next
		}
		cur.chars = append(cur.chars, b)
	}
	return len(segs), ucs2
}
