package randid

import (
	"sort"
	"strings"
	"testing"
	"time"
)

// TestOrderedSortsByTime: ids drawn at increasing times sort in that
// order as strings, whatever their random parts; the alphabet is base62's.
func TestOrderedSortsByTime(t *testing.T) {
	start := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	steps := []time.Duration{0, time.Microsecond, 61 * time.Microsecond, 62 * time.Microsecond, time.Second, 24 * time.Hour, 200 * 24 * 365 * time.Hour}
	var ids []string
	for _, d := range steps {
		id := Ordered(start.Add(d), 13)
		if len(id) != orderedTimeChars+13 {
			t.Fatalf("Ordered = %q: %d characters; want %d", id, len(id), orderedTimeChars+13)
		}
		for _, c := range id {
			if !strings.ContainsRune(Alphabet, c) {
				t.Fatalf("Ordered = %q: %q is not base62", id, c)
			}
		}
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("ids drawn in time order do not sort: %q", ids)
	}
	if a, b := Ordered(start, 13), Ordered(start, 13); a == b || a[:orderedTimeChars] != b[:orderedTimeChars] {
		t.Fatalf("two ids of the same microsecond: %q, %q; want the same time part and different ids", a, b)
	}
	if got := Ordered(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), 0); got != "000000000" {
		t.Fatalf("Ordered(before 2020) = %q", got)
	}
}
