package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// micros is an amount of US dollars in millionths, as Keybrake counts it.
// The demo never holds money in a float either.
type micros int64

const perDollar micros = 1_000_000

// parseMicros reads a JSON number of dollars ("1000", "0.5", "19.999999")
// exactly.
func parseMicros(n json.Number) (micros, error) {
	s := n.String()
	if s == "" {
		return 0, fmt.Errorf("missing amount")
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 6 || strings.ContainsAny(s, "eE+") {
		return 0, fmt.Errorf("amount %q is not dollars with at most 6 decimals", n)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", n, err)
	}
	var f int64
	if frac != "" {
		if f, err = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("amount %q: %w", n, err)
		}
	}
	m := micros(w)*perDollar + micros(f)
	if neg {
		m = -m
	}
	return m, nil
}

// mustMicros parses an amount, or reports it in the failures and returns -1.
func mustMicros(what string, n json.Number, fail func(string, ...any)) micros {
	m, err := parseMicros(n)
	if err != nil {
		fail("%s: %v", what, err)
		return -1
	}
	return m
}

// usd formats an amount as $1,234.56 (more decimals only when the amount
// has them).
func (m micros) usd() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	whole, frac := v/int64(perDollar), v%int64(perDollar)
	fs := fmt.Sprintf("%02d", frac/10_000)
	if frac%10_000 != 0 {
		fs = strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	return sign + "$" + thousands(whole) + "." + fs
}

// thousands writes n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// jsonNumber turns a dollar amount given as text into a JSON number.
func jsonNumber(s string) json.Number { return json.Number(strings.TrimSpace(s)) }
