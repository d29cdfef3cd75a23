package integration

import (
	"math/rand/v2"
	"strings"
	"unicode/utf16"
)

// Random SMS bodies from the whole space a caller can send: GSM-7 with
// extension characters at the segment edges, every script, combining
// marks (stacked, or more than a segment's worth), emoji with skin tones,
// variation selectors, ZWJ sequences, flags and tag sequences, Hangul
// jamo, Indic clusters, prepended marks, line breaks, any code point; from
// empty to beyond Twilio's 1,600 characters. The cap model and the segment
// oracle test draw from here.

var (
	smsGSMBasic = []rune("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
	smsGSMExt = []rune("\f^{}\\[~]|€")
	// smsBases are letters of many scripts (some GSM-7: Ω, é, a).
	smsBases = []rune("aeAzéΩжЖλπ中語ばبשकषกฮ한ㄱÞðçûİı")
	// smsMarks extend a cluster in Unicode 10 and later, or only later
	// (U+1AC1, U+1ABF), plus virama and spacing marks.
	smsMarks = []rune("\u0300\u0301\u0308\u0327\u036F\u0483\u0489\u05B0\u0E31\u093F\u094D\u0951\u1AB0\u1ABF\u1AC1\u20D0\u20E3\uFE20\uFE0E\uFE0F\u200C")
	// smsEmoji mixes bases that take skin tones, Glue_After_Zwj, newer
	// pictographs and BMP symbols.
	smsEmoji     = []rune("😀👍👨👩👧👦🧑❤✈☺🔥💻🌈🏳⚕♀♂🫱🦰💋🗨🚀👁🤝🙂🥲⛹")
	smsSkinTones = []rune("\U0001F3FB\U0001F3FC\U0001F3FD\U0001F3FE\U0001F3FF")
	smsOdd       = []rune("\t\u00A0\uFEFF\u2028\u0600\u0605\u06DD\u0D4E\u110BD\u200D\u200B\u00AD\u0000\u007F\uFFFD")
)

// smsBody is one random body.
func smsBody(rng *rand.Rand) string {
	switch rng.IntN(10) {
	case 0, 1, 2:
		return smsGSMBody(rng)
	case 3, 4:
		return smsEdgeBody(rng)
	}
	return smsMixedBody(rng, smsLength(rng))
}

// smsLength is a length in UTF-16 units: often at a segment edge, up to
// past Twilio's limit.
func smsLength(rng *rand.Rand) int {
	edges := []int{0, 1, 2, 66, 67, 68, 69, 70, 71, 72, 133, 134, 135, 136, 152, 153, 154, 159, 160, 161, 162,
		200, 201, 268, 305, 306, 307, 459, 460, 612}
	long := []int{1071, 1072, 1530, 1599, 1600, 1601, 1602, 2000}
	switch rng.IntN(10) {
	case 0:
		return rng.IntN(1700)
	case 1:
		return long[rng.IntN(len(long))]
	}
	return edges[rng.IntN(len(edges))]
}

// smsGSMBody is GSM-7 only: basic characters, now and then an extension
// character, and often one placed at a segment edge (septet 152, 153,
// 159, 160, …).
func smsGSMBody(rng *rand.Rand) string {
	n := smsLength(rng)
	var b strings.Builder
	extRate := []int{0, 3, 20, 100}[rng.IntN(4)]
	for i := 0; i < n; i++ {
		if extRate > 0 && rng.IntN(100) < extRate {
			b.WriteRune(smsGSMExt[rng.IntN(len(smsGSMExt))])
			continue
		}
		b.WriteRune(smsGSMBasic[rng.IntN(len(smsGSMBasic))])
	}
	body := []rune(b.String())
	if rng.IntN(2) == 0 && len(body) > 0 {
		at := []int{151, 152, 153, 154, 158, 159, 160, 161, 305, 306, 307, 458, 459}[rng.IntN(13)]
		if at < len(body) {
			body[at] = smsGSMExt[rng.IntN(len(smsGSMExt))]
		}
	}
	return string(body)
}

// smsEdgeBody is filler up to a segment edge, one cluster of several code
// units across it, filler after: the bodies that catch a cluster split.
func smsEdgeBody(rng *rand.Rand) string {
	filler := string(smsGSMBasic[rng.IntN(len(smsGSMBasic))])
	if rng.IntN(3) == 0 {
		filler = string(smsBases[rng.IntN(len(smsBases))])
	}
	before := []int{63, 64, 65, 66, 67, 68, 69, 70, 130, 131, 132, 133, 134, 150, 152, 153, 159, 160}[rng.IntN(18)]
	after := rng.IntN(140)
	return strings.Repeat(filler, before) + smsCluster(rng) + strings.Repeat(filler, after)
}

// smsMixedBody is clusters of every kind until about n UTF-16 units.
func smsMixedBody(rng *rand.Rand, n int) string {
	var b strings.Builder
	units := 0
	gsmShare := rng.IntN(100)
	for units < n {
		var c string
		if rng.IntN(100) < gsmShare {
			c = string(smsGSMBasic[rng.IntN(len(smsGSMBasic))])
		} else {
			c = smsCluster(rng)
		}
		b.WriteString(c)
		units += len(utf16.Encode([]rune(c)))
	}
	return b.String()
}

// smsCluster is one user-perceived character of some kind (or a piece of
// one: a lone skin tone, a lone regional indicator, a dangling ZWJ).
func smsCluster(rng *rand.Rand) string {
	pick := func(rs []rune) string { return string(rs[rng.IntN(len(rs))]) }
	switch rng.IntN(16) {
	case 0:
		return pick(smsGSMExt)
	case 1: // a letter and marks, now and then more than a segment holds
		n := 1 + rng.IntN(3)
		if rng.IntN(10) == 0 {
			n = 20 + rng.IntN(120)
		}
		s := pick(smsBases)
		for range n {
			s += pick(smsMarks)
		}
		return s
	case 2: // an emoji, maybe with a variation selector or skin tone
		s := pick(smsEmoji)
		if rng.IntN(2) == 0 {
			s += "\uFE0F"
		}
		if rng.IntN(2) == 0 {
			s += pick(smsSkinTones)
		}
		return s
	case 3: // a ZWJ sequence of 2 to 4
		s := pick(smsEmoji)
		for range 1 + rng.IntN(3) {
			if rng.IntN(3) == 0 {
				s += "\uFE0F"
			}
			s += "\u200D" + pick(smsEmoji)
		}
		return s
	case 4: // a flag, or an odd regional indicator
		ri := func() string { return string(rune(0x1F1E6 + rng.IntN(26))) }
		if rng.IntN(4) == 0 {
			return ri()
		}
		return ri() + ri()
	case 5: // a tag sequence flag (England, Scotland, Wales), or a keycap
		if rng.IntN(2) == 0 {
			return "🏴" + []string{"\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067", "\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074"}[rng.IntN(2)] + "\U000E007F"
		}
		return string(rune('0'+rng.IntN(10))) + "\uFE0F\u20E3"
	case 6: // Hangul: jamo L V T, or a syllable with a trailing jamo
		l, v, tj := rune(0x1100+rng.IntN(19)), rune(0x1161+rng.IntN(21)), rune(0x11A8+rng.IntN(27))
		if rng.IntN(2) == 0 {
			return string([]rune{l, v, tj}[:1+rng.IntN(3)])
		}
		return string(rune(0xAC00+rng.IntN(11172))) + string([]rune{tj}[:rng.IntN(2)])
	case 7: // Indic: consonant, virama, consonant; or a spacing mark
		if rng.IntN(2) == 0 {
			return "क\u094Dष"
		}
		return "क\u093F"
	case 8: // a prepended mark, a letter
		return pick([]rune("\u0600\u0601\u0605\u06DD\u070F\u0D4E")) + pick(smsBases)
	case 9: // line breaks and controls
		return []string{"\r\n", "\r", "\n", "\t", "\f", "\u0000", "\r\n\u0301"}[rng.IntN(7)]
	case 10: // a skin tone or ZWJ after a letter
		if rng.IntN(2) == 0 {
			return pick(smsBases) + pick(smsSkinTones)
		}
		return pick(smsBases) + "\u200D" + pick(smsEmoji)
	case 11:
		return pick(smsOdd)
	case 12: // any code point, astral or not (no surrogates)
		for {
			r := rune(rng.IntN(0x110000))
			if rng.IntN(2) == 0 {
				r = rune(rng.IntN(0x10000))
			}
			if r < 0xD800 || r > 0xDFFF {
				return string(r)
			}
		}
	case 13:
		return pick(smsBases)
	case 14:
		return pick(smsSkinTones)
	}
	return pick(smsEmoji)
}

// randomSMSBodies are n bodies from seed.
func randomSMSBodies(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	out := make([]string, n)
	for i := range out {
		out[i] = smsBody(rng)
	}
	return out
}

// smsBoundaryBodies are the bodies named in issue 21, and their kin.
func smsBoundaryBodies() []string {
	a := func(n int) string { return strings.Repeat("a", n) }
	return []string{
		"", a(160), a(161), a(306), a(307), a(1600), a(1601),
		a(66) + "e\u0301" + a(66), a(67) + "e\u0301" + a(66), a(65) + "e\u0301" + a(67),
		a(152) + "€" + a(152), a(153) + "€", a(159) + "€", a(160) + "€",
		a(66) + "👨\u200D👩\u200D👧" + a(60), a(66) + "🇺🇸" + a(66), a(66) + "👍🏽" + a(66),
		a(80) + "\r\n" + a(80), "e" + strings.Repeat("\u0301", 80), a(70) + "e" + strings.Repeat("\u0301", 65),
	}
}
