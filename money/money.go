// Package money holds Keybrake's one representation of money: an integer
// count of micro-dollars. Nothing inside Keybrake ever holds money in a float.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Micros is an amount of US dollars in millionths of a dollar.
// $1.00 is 1_000_000 Micros.
type Micros int64

// PerDollar is how many Micros make one US dollar.
const PerDollar Micros = 1_000_000

// MaxUSD bounds every amount parsed from input, so that sums of amounts can
// never overflow an int64 (9.2e18 micros is $9.2e12).
const MaxUSD = 1_000_000_000_000 // one trillion dollars

// ErrInvalidAmount is returned for amounts that are not plain non-negative
// decimal numbers with at most six decimals.
var ErrInvalidAmount = errors.New("invalid amount")

// ParseUSD parses a decimal string of dollars ("12", "12.5", "0.000001")
// into Micros exactly. It refuses negative numbers, exponents, more than six
// decimals and amounts over MaxUSD.
func ParseUSD(s string) (Micros, error) {
	return parseDecimal(s, 6)
}

// parseDecimal parses a non-negative decimal with at most scale decimals
// into an integer scaled by 10^scale.
func parseDecimal(s string, scale int) (Micros, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrInvalidAmount)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && !hasDot {
		return 0, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	if hasDot && frac == "" {
		return 0, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
	}
	if whole == "" {
		whole = "0"
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q is not a plain non-negative decimal", ErrInvalidAmount, s)
		}
	}
	// Trailing zeros beyond the scale carry no value ("1.50000000").
	frac = strings.TrimRight(frac, "0")
	if len(frac) > scale {
		return 0, fmt.Errorf("%w: %q has more than %d decimals", ErrInvalidAmount, s, scale)
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 13 {
		return 0, fmt.Errorf("%w: %q is too large", ErrInvalidAmount, s)
	}
	var w int64
	if whole != "" {
		var err error
		w, err = strconv.ParseInt(whole, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q", ErrInvalidAmount, s)
		}
	}
	if w > MaxUSD {
		return 0, fmt.Errorf("%w: %q is over the maximum of %d", ErrInvalidAmount, s, MaxUSD)
	}
	frac += strings.Repeat("0", scale-len(frac))
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	return Micros(w*pow10(scale) + f), nil
}

func pow10(n int) int64 {
	p := int64(1)
	for i := 0; i < n; i++ {
		p *= 10
	}
	return p
}

// FromCents converts an amount of US cents.
func FromCents(cents int64) (Micros, error) {
	if cents < 0 || cents > MaxUSD*100 {
		return 0, fmt.Errorf("%w: %d cents", ErrInvalidAmount, cents)
	}
	return Micros(cents * 10_000), nil
}

// String renders the amount in dollars with six decimals, e.g. "100.000000".
func (m Micros) String() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign = "-"
		if v == math.MinInt64 {
			return "-9223372036854.775808"
		}
		v = -v
	}
	return fmt.Sprintf("%s%d.%06d", sign, v/1_000_000, v%1_000_000)
}

// Dollars renders the amount for people: "$1,000.00" (cents rounded half up;
// sub-cent amounts keep up to six decimals so nothing reads as $0.00).
func (m Micros) Dollars() string {
	v := int64(m)
	sign := ""
	if v < 0 {
		sign = "-"
		v = -v
	}
	whole := v / 1_000_000
	frac := v % 1_000_000
	fracStr := fmt.Sprintf("%02d", frac/10_000)
	if frac%10_000 != 0 {
		fracStr = strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	ws := strconv.FormatInt(whole, 10)
	var b strings.Builder
	for i, c := range ws {
		if i > 0 && (len(ws)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + "$" + b.String() + "." + fracStr
}

// MarshalJSON writes the amount as a JSON number of dollars with six
// decimals, trailing zeros trimmed (100 → 100, 0.5 → 0.5).
func (m Micros) MarshalJSON() ([]byte, error) {
	s := m.String()
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	return []byte(s), nil
}

// UnmarshalJSON reads a JSON number (or a numeric string) of dollars
// exactly, without passing through a float.
func (m *Micros) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = str
	}
	v, err := ParseUSD(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MulDivCeil returns ceil(a*b/d) for non-negative operands, refusing any
// result that would overflow.
func MulDivCeil(a, b, d int64) (int64, error) {
	if a < 0 || b < 0 || d <= 0 {
		return 0, fmt.Errorf("%w: negative operand", ErrInvalidAmount)
	}
	if a != 0 && b > math.MaxInt64/a {
		return 0, fmt.Errorf("%w: amount too large", ErrInvalidAmount)
	}
	p := a * b
	q := p / d
	if p%d != 0 {
		q++
	}
	return q, nil
}
