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
	return money.CeilMicros(usd)
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
