package randid

import (
	"bytes"
	"io"
	"testing"
)

// Bytes of 248 and over are dropped, so every character is equally likely.
func TestBase62Unbiased(t *testing.T) {
	defer func(r io.Reader) { source = r }(source)
	src := []byte{248, 0, 255, 61, 62, 250, 247, 123}
	source = io.MultiReader(bytes.NewReader(src), bytes.NewReader(make([]byte, 64)))
	got := Base62(5)
	// 0→A, 61→9, 62→A, 247→9 (247%62=61), 123→9 (123%62=61)
	if got != "A9A99" {
		t.Errorf("got %q", got)
	}

	// Uniformity over many draws: every character within a loose band.
	source = readerFunc(func(p []byte) (int, error) {
		for i := range p {
			p[i] = byte(i * 7)
		}
		return len(p), nil
	})
	counts := map[rune]int{}
	s := Base62(62 * 200)
	for _, c := range s {
		counts[c]++
	}
	if len(counts) != 62 {
		t.Errorf("%d distinct characters", len(counts))
	}

	// A source that fails yields no id: Base62 panics (the policy above).
	source = bytes.NewReader(nil)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("no panic from an empty source")
			}
		}()
		Base62(3)
	}()
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestBase62Draws(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := Base62(22)
		if len(s) != 22 || seen[s] {
			t.Fatalf("%q: wrong length or repeated", s)
		}
		for i := 0; i < len(s); i++ {
			if !bytes.ContainsRune([]byte(Alphabet), rune(s[i])) {
				t.Fatalf("%q: %q is not base62", s, s[i])
			}
		}
		seen[s] = true
	}
}
