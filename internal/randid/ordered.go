package randid

import "time"

// orderedAlphabet is base62 in byte order, so that the time part of
// Ordered sorts as the time does.
const orderedAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// orderedEpoch is where Ordered's clock starts; orderedTimeChars base62
// digits of microseconds since it last until the 2440s.
var orderedEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

const orderedTimeChars = 9

// Ordered returns orderedTimeChars base62 characters of t (microseconds
// since 2020, in byte order) followed by n random ones: ids drawn one after
// another sort in the order they were drawn (to the microsecond), so a
// B-tree index on them is written at its end rather than all over it, and
// the random part keeps two ids of the same microsecond apart. t before
// 2020 counts as 2020.
func Ordered(t time.Time, n int) string {
	us := t.Sub(orderedEpoch).Microseconds()
	if us < 0 {
		us = 0
	}
	var head [orderedTimeChars]byte
	for i := orderedTimeChars - 1; i >= 0; i-- {
		head[i] = orderedAlphabet[us%62]
		us /= 62
	}
	return string(head[:]) + Base62(n)
}
