package keyapi

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"2h":     2 * time.Hour,
		"90m":    90 * time.Minute,
		"1h30m":  90 * time.Minute,
		"1d":     24 * time.Hour,
		"1d12h":  36 * time.Hour,
		"2d":     48 * time.Hour,
		"10d":    240 * time.Hour,
		"1.5h":   90 * time.Minute,
		"500ms":  500 * time.Millisecond,
		"-1d":    -24 * time.Hour,
		"0d":     0,
		"1h1d":   25 * time.Hour,
		"12d30m": 288*time.Hour + 30*time.Minute,
	}
	for in, want := range good {
		got, err := parseDuration(in)
		if err != nil || got != want {
			t.Errorf("parseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", ".5d", "1", "2 hours", "1dd", "h", "1w", "99999999d",
		"1d" + string(make([]byte, 70))} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %s, want an error", in, got)
		}
	}
}
