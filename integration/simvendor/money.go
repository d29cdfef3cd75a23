package simvendor

import (
	"fmt"
	"strings"
)

// Micros per US dollar.
const microsPerUSD int64 = 1_000_000

// zeroDecimal and threeDecimal are Stripe's currencies whose amounts are not
// in hundredths (https://docs.stripe.com/currencies#zero-decimal and
// #three-decimal).
var (
	zeroDecimal = setOf("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
		"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf")
	threeDecimal = setOf("bhd", "jod", "kwd", "omr", "tnd")
)

func setOf(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// minorPerMajor is how many minor units make one major unit of currency.
func minorPerMajor(currency string) int64 {
	switch {
	case zeroDecimal[currency]:
		return 1
	case threeDecimal[currency]:
		return 1000
	}
	return 100
}

// rate is the USD micro-dollars per major unit of currency.
func (s *Sim) rate(currency string) (int64, bool) {
	currency = strings.ToLower(currency)
	if currency == "usd" {
		return microsPerUSD, true
	}
	r, ok := s.cfg.Rates[currency]
	return r, ok && r > 0
}

// toMicros converts amount minor units of currency to USD micro-dollars,
// rounding a fraction of a micro-dollar up (the referee never counts low).
func (s *Sim) toMicros(amount int64, currency string) (int64, error) {
	r, ok := s.rate(currency)
	if !ok {
		return 0, fmt.Errorf("simvendor: no USD rate configured for currency %q", currency)
	}
	den := minorPerMajor(strings.ToLower(currency))
	return ceilDiv(amount*r, den), nil
}

// ceilDiv is a/b rounded up, for a ≥ 0 and b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// twilioPrice formats micro-dollars the way Twilio prints a price: a
// negative decimal string with at least five decimals ("-0.00830").
func twilioPrice(micros int64) string {
	s := fmt.Sprintf("%d.%06d", micros/microsPerUSD, micros%microsPerUSD)
	for strings.HasSuffix(s, "0") && len(s)-strings.IndexByte(s, '.') > 6 {
		s = s[:len(s)-1]
	}
	return "-" + s
}
