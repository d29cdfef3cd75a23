package money

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/keybrake/keybrake/internal/text"
)

// maxMicros bounds every exact amount converted to Micros (MaxUSD dollars).
var maxMicros = big.NewInt(MaxUSD * int64(PerDollar))

// exactDecimal is a decimal number as a vendor writes it in a request or a
// response (a JSON number or a numeric string): an optional exponent of at
// most three digits, and a leading "." as configuration may write it.
var exactDecimal = regexp.MustCompile(`^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?|[0-9]+(\.[0-9]+)?|\.[0-9]+)$`)

// ParseDecimal parses a non-negative decimal number exactly ("12", "0.5",
// ".5", "1e3", "0.00791234"): a quantity read from a vendor's body, or an
// amount with more decimals than Micros keeps. It never passes through a
// float.
func ParseDecimal(s string) (*big.Rat, error) {
	s = strings.TrimSpace(s)
	if len(s) > 64 || !exactDecimal.MatchString(s) {
		return nil, fmt.Errorf("%q is not a number", text.Truncate(s, 40))
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a number", text.Truncate(s, 40))
	}
	if r.Sign() < 0 {
		return nil, fmt.Errorf("%q is negative", s)
	}
	return r, nil
}

// CeilMicros converts an exact, non-negative amount of dollars to Micros,
// rounding up so that a cost is never undercounted, and refuses amounts
// over MaxUSD.
func CeilMicros(usd *big.Rat) (Micros, error) {
	if usd.Sign() < 0 {
		return 0, fmt.Errorf("%w: negative amount", ErrInvalidAmount)
	}
	m := new(big.Rat).Mul(usd, big.NewRat(int64(PerDollar), 1))
	q, r := new(big.Int).QuoRem(m.Num(), m.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if q.Cmp(maxMicros) > 0 {
		return 0, fmt.Errorf("%w: amount too large", ErrInvalidAmount)
	}
	return Micros(q.Int64()), nil
}

// ParseUSDCeil parses a decimal number of dollars with any number of
// decimals ("0.0083", "0.00791234") and rounds it up to Micros. A leading
// minus sign is ignored: Twilio reports what it charged as a negative price
// ("-0.00830").
func ParseUSDCeil(s string) (Micros, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "-")
	r, err := ParseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidAmount, err)
	}
	return CeilMicros(r)
}
