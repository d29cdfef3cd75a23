package keyapi

import (
	"bytes"
	"testing"
)

func TestNewIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, secret := newKeyID(), newSecret()
		if !keyIDPattern.MatchString(id) || !secretPattern.MatchString(secret) {
			t.Fatalf("id %q secret %q", id, secret)
		}
		if seen[id] || seen[secret] {
			t.Fatalf("repeated value")
		}
		seen[id], seen[secret] = true, true
	}
}

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
