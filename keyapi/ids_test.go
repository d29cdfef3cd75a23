package keyapi

import (
	"bytes"
	"io"
	"testing"
)

func TestNewIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, err := newKeyID()
		if err != nil {
			t.Fatal(err)
		}
		secret, err := newSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !keyIDPattern.MatchString(id) || !secretPattern.MatchString(secret) {
			t.Fatalf("id %q secret %q", id, secret)
		}
		if seen[id] || seen[secret] {
			t.Fatalf("repeated value")
		}
		seen[id], seen[secret] = true, true
	}
}

// Bytes of 248 and over are dropped, so every character is equally likely.
func TestRandomBase62Unbiased(t *testing.T) {
	defer func(r io.Reader) { randReader = r }(randReader)
	src := []byte{248, 0, 255, 61, 62, 250, 247, 123}
	randReader = io.MultiReader(bytes.NewReader(src), bytes.NewReader(make([]byte, 64)))
	got, err := randomBase62(5)
	if err != nil {
		t.Fatal(err)
	}
	// 0→A, 61→9, 62→A, 247→9 (247%62=61), 123→9 (123%62=61)
	if got != "A9A99" {
		t.Errorf("got %q", got)
	}

	// Uniformity over many draws: every character within a loose band.
	randReader = readerFunc(func(p []byte) (int, error) {
		for i := range p {
			p[i] = byte(i * 7)
		}
		return len(p), nil
	})
	counts := map[rune]int{}
	s, _ := randomBase62(62 * 200)
	for _, c := range s {
		counts[c]++
	}
	if len(counts) != 62 {
		t.Errorf("%d distinct characters", len(counts))
	}

	randReader = bytes.NewReader(nil)
	if _, err := randomBase62(3); err == nil {
		t.Error("no error from an empty source")
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestPlausibleKeyID(t *testing.T) {
	for id, want := range map[string]bool{
		"vkAbc123": true, "": false, "vk_abc": false, "vk-abc": false, "vk abc": false,
		string(bytes.Repeat([]byte("a"), 64)): true, string(bytes.Repeat([]byte("a"), 65)): false,
	} {
		if got := plausibleKeyID(id); got != want {
			t.Errorf("plausibleKeyID(%q) = %v", id, got)
		}
	}
}
