package integration

import (
	"encoding/json"
	"strings"

	"github.com/keybrake/keybrake/money"
)

func ledgerMicros(dollars int64) money.Micros { return money.Micros(dollars) * money.PerDollar }

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
