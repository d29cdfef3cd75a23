package money

import (
	"fmt"
	"strings"
)

// zeroDecimal lists the currencies whose smallest unit is the whole unit, as
// Stripe sends them (https://docs.stripe.com/currencies#zero-decimal).
var zeroDecimal = map[string]bool{
	"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true,
	"kmf": true, "krw": true, "mga": true, "pyg": true, "rwf": true,
	"ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true,
}

// threeDecimal lists the currencies whose minor unit is a thousandth.
var threeDecimal = map[string]bool{
	"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true,
}

// MinorUnitDecimals tells how many decimals a currency's minor unit has
// (2 for usd, 0 for jpy, 3 for kwd).
func MinorUnitDecimals(currency string) int {
	c := strings.ToLower(currency)
	switch {
	case zeroDecimal[c]:
		return 0
	case threeDecimal[c]:
		return 3
	default:
		return 2
	}
}

// Rates converts foreign currencies to US dollars. Each rate is how many
// Micros one whole unit of the currency is worth (EUR 1.08 → 1_080_000).
// USD needs no rate. A currency without a rate cannot be converted: Keybrake
// refuses to guess what a foreign amount costs.
type Rates map[string]Micros

// ErrNoRate is returned when a currency has no configured rate.
var ErrNoRate = fmt.Errorf("no exchange rate configured")

// ParseRate parses a rate given as dollars per whole unit, e.g. "0.0067" for
// JPY. Up to six decimals.
func ParseRate(s string) (Micros, error) {
	r, err := ParseUSD(s)
	if err != nil {
		return 0, err
	}
	if r == 0 {
		return 0, fmt.Errorf("%w: rate must be positive", ErrInvalidAmount)
	}
	return r, nil
}

// ToUSD converts an amount in a currency's minor units (Stripe's integer
// amounts) into Micros, rounding up so an estimate never undercounts.
func (r Rates) ToUSD(amountMinor int64, currency string) (Micros, error) {
	c := strings.ToLower(strings.TrimSpace(currency))
	if c == "" {
		return 0, fmt.Errorf("missing currency")
	}
	if amountMinor < 0 {
		return 0, fmt.Errorf("%w: negative amount", ErrInvalidAmount)
	}
	rate := PerDollar
	if c != "usd" {
		var ok bool
		rate, ok = r[c]
		if !ok {
			return 0, fmt.Errorf("%w for currency %q", ErrNoRate, c)
		}
	}
	v, err := MulDivCeil(amountMinor, int64(rate), pow10(MinorUnitDecimals(c)))
	if err != nil {
		return 0, err
	}
	if v > MaxUSD*int64(PerDollar) {
		return 0, fmt.Errorf("%w: amount too large", ErrInvalidAmount)
	}
	return Micros(v), nil
}
