package declared

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/keybrake/keybrake/money"
)

// Price is an amount of US dollars in nano-dollars (10⁻⁹ USD). Prices are
// kept finer than money.Micros so a per-token price such as $0.00000015 is
// exact; a cost is always rounded UP to whole micro-dollars, so Keybrake
// never undercounts.
type Price int64

// NanosPerMicro is how many nano-dollars make one micro-dollar.
const NanosPerMicro = 1000

// priceScale is the number of decimals a Price keeps.
const priceScale = 9

// maxMicros bounds every computed cost (money.MaxUSD dollars).
var maxMicros = big.NewInt(money.MaxUSD * int64(money.PerDollar))

// configDecimal is a plain non-negative decimal, as prices and defaults are
// written in configuration: "12", "0.5", ".5", "0.00000015".
var configDecimal = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|\.[0-9]+)$`)

// ParsePrice parses a non-negative decimal number of dollars with up to nine
// decimals ("0.00000015") exactly. Exponents, signs and amounts over
// money.MaxUSD are refused.
func ParsePrice(s string) (Price, error) {
	s = strings.TrimSpace(s)
	if !configDecimal.MatchString(s) {
		return 0, fmt.Errorf("%w: %q is not a plain non-negative decimal", money.ErrInvalidAmount, s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if len(frac) > priceScale {
		return 0, fmt.Errorf("%w: %q has more than %d decimals", money.ErrInvalidAmount, s, priceScale)
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 13 {
		return 0, fmt.Errorf("%w: %q is too large", money.ErrInvalidAmount, s)
	}
	var w, f int64
	for _, c := range whole {
		w = w*10 + int64(c-'0')
	}
	if w > money.MaxUSD {
		return 0, fmt.Errorf("%w: %q is over the maximum of %d", money.ErrInvalidAmount, s, money.MaxUSD)
	}
	frac += strings.Repeat("0", priceScale-len(frac))
	for _, c := range frac {
		f = f*10 + int64(c-'0')
	}
	return Price(w*1_000_000_000 + f), nil
}

// String renders the price in dollars with nine decimals.
func (p Price) String() string {
	return fmt.Sprintf("%d.%09d", int64(p)/1_000_000_000, int64(p)%1_000_000_000)
}

// Micros returns the price rounded up to whole micro-dollars.
func (p Price) Micros() money.Micros {
	return money.Micros((int64(p) + NanosPerMicro - 1) / NanosPerMicro)
}

// rat returns the price in dollars as an exact rational.
func (p Price) rat() *big.Rat { return big.NewRat(int64(p), 1_000_000_000) }

// Cost returns ceil(units × p) in micro-dollars, computed exactly. units is
// a non-negative exact quantity (tokens, segments, emails…).
func (p Price) Cost(units *big.Rat) (money.Micros, error) {
	if units.Sign() < 0 {
		return 0, fmt.Errorf("%w: negative quantity", money.ErrInvalidAmount)
	}
	usd := new(big.Rat).Mul(units, p.rat())
	return CeilMicros(usd)
}

// CeilMicros converts an exact, non-negative amount of dollars to
// micro-dollars, rounding up, and refuses amounts over money.MaxUSD.
func CeilMicros(usd *big.Rat) (money.Micros, error) {
	if usd.Sign() < 0 {
		return 0, fmt.Errorf("%w: negative amount", money.ErrInvalidAmount)
	}
	m := new(big.Rat).Mul(usd, big.NewRat(int64(money.PerDollar), 1))
	q, r := new(big.Int).QuoRem(m.Num(), m.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if q.Cmp(maxMicros) > 0 {
		return 0, fmt.Errorf("%w: amount too large", money.ErrInvalidAmount)
	}
	return money.Micros(q.Int64()), nil
}

// jsonNumber is a JSON number (or numeric string) as it may appear in a
// request or response body: an optional exponent of at most three digits
// is accepted there, unlike in configuration.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?$`)

// ParseQuantity parses a decimal number from a request or response body
// exactly. Negative numbers are refused.
func ParseQuantity(s string) (*big.Rat, error) {
	s = strings.TrimSpace(s)
	if len(s) > 64 || !(jsonNumber.MatchString(s) || configDecimal.MatchString(s)) {
		return nil, fmt.Errorf("%q is not a number", truncate(s, 40))
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a number", truncate(s, 40))
	}
	if r.Sign() < 0 {
		return nil, fmt.Errorf("%q is negative", s)
	}
	return r, nil
}

// ParseUSDCeil parses a decimal number of dollars with any number of
// decimals ("0.0083", "0.00791234") and rounds it up to micro-dollars. A
// leading minus sign is ignored: Twilio reports what it charged as a
// negative price ("-0.00830").
func ParseUSDCeil(s string) (money.Micros, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "-")
	r, err := ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", money.ErrInvalidAmount, err)
	}
	return CeilMicros(r)
}

// Decimal is a decimal number written in configuration. In JSON it may be
// a string ("0.000002") or a number (0.000002); either way it is kept as
// written and parsed exactly, never through a float.
type Decimal string

// UnmarshalJSON accepts a JSON string or number.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*d = ""
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*d = Decimal(strings.TrimSpace(str))
		return nil
	}
	*d = Decimal(s)
	return nil
}

// MarshalJSON writes the decimal as a JSON string, exactly as written.
func (d Decimal) MarshalJSON() ([]byte, error) { return json.Marshal(string(d)) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
