package keyapi

import (
	"errors"
	"strconv"
	"time"
)

// parseDuration parses a Go duration ("90m", "2h30m") and, like Caddy's
// caddy.ParseDuration, also whole days ("1d", "1d12h"). Fractional days are
// refused so nothing passes through a float.
func parseDuration(s string) (time.Duration, error) {
	if s == "" || len(s) > 64 {
		return 0, errors.New("invalid duration")
	}
	out := make([]byte, 0, len(s)+8)
	runStart := -1 // start in s of the digit run just before i, or -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if runStart < 0 {
				runStart = i
			}
			out = append(out, c)
			continue
		case c == 'd':
			if runStart < 0 || (runStart > 0 && s[runStart-1] == '.') {
				return 0, errors.New("days must be a whole number")
			}
			days, err := strconv.ParseInt(s[runStart:i], 10, 64)
			if err != nil || days > 1<<20 {
				return 0, errors.New("too many days")
			}
			out = out[:len(out)-(i-runStart)]
			out = strconv.AppendInt(out, days*24, 10)
			out = append(out, 'h')
		default:
			out = append(out, c)
		}
		runStart = -1
	}
	return time.ParseDuration(string(out))
}
