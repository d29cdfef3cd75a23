package twilio

import "unicode/utf16"

// Encodings of an SMS body.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// Segment sizes: a single message holds 160 GSM-7 septets or 70 UCS-2 code
// units; a multipart message spends 7 septets (3 code units) of each
// segment on the concatenation header, leaving 153 and 67.
const (
	gsmSingle  = 160
	gsmMulti   = 153
	ucs2Single = 70
	ucs2Multi  = 67
)

// gsmBasic is the GSM 03.38 basic character set (one septet each), without
// the escape character.
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
// and the encoding it is sent in. A body made only of GSM-7 characters is
// sent as GSM-7 (160 septets in one segment, 153 per segment when
// multipart, an extension character such as { } [ ] ~ \ | ^ € counting as
// two and never split across segments); any other character makes the whole
// body UCS-2 (70 UTF-16 code units in one segment, 67 per segment when
// multipart, a surrogate pair never split). An empty body is one segment.
func Segments(body string) (segments int, encoding string) {
	widths := make([]int, 0, len(body))
	gsm := true
	for _, c := range body {
		w, ok := gsmWidth[c]
		if !ok {
			gsm = false
			break
		}
		widths = append(widths, w)
	}
	single, multi := gsmSingle, gsmMulti
	encoding = EncodingGSM7
	if !gsm {
		widths = widths[:0]
		for _, c := range body {
			widths = append(widths, utf16.RuneLen(c))
		}
		single, multi, encoding = ucs2Single, ucs2Multi, EncodingUCS2
	}
	total := 0
	for _, w := range widths {
		total += w
	}
	if total <= single {
		return 1, encoding
	}
	segments, used := 1, 0
	for _, w := range widths {
		if used+w > multi {
			segments++
			used = 0
		}
		used += w
	}
	return segments, encoding
}
