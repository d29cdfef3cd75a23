package money

import (
	"encoding/json"
	"errors"
	"math/big"
	"testing"
)

func TestParseUSD(t *testing.T) {
	good := map[string]Micros{
		"0": 0, "1": 1_000_000, "12.5": 12_500_000, "0.000001": 1,
		"100.000000": 100_000_000, ".5": 500_000, "007": 7_000_000,
		"1.500000000": 1_500_000,
	}
	for in, want := range good {
		got, err := ParseUSD(in)
		if err != nil || got != want {
			t.Errorf("ParseUSD(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1e3", "0.0000001", "abc", "1.", "1,5", "NaN", "99999999999999"} {
		if _, err := ParseUSD(in); !errors.Is(err, ErrInvalidAmount) {
			t.Errorf("ParseUSD(%q) err = %v; want ErrInvalidAmount", in, err)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	var v struct {
		A Micros `json:"a"`
		B Micros `json:"b"`
	}
	if err := json.Unmarshal([]byte(`{"a":0.1,"b":"200"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != 100_000 || v.B != 200_000_000 {
		t.Fatalf("got %d %d", v.A, v.B)
	}
	out, _ := json.Marshal(v)
	if string(out) != `{"a":0.1,"b":200}` {
		t.Fatalf("marshal = %s", out)
	}
	if err := json.Unmarshal([]byte(`{"a":1e2}`), &v); err == nil {
		t.Fatal("exponent accepted")
	}
}

func TestDollars(t *testing.T) {
	cases := map[Micros]string{0: "$0.00", 1_000_000_000: "$1,000.00", 1: "$0.000001", 5_050_000: "$5.05", 123_456_789_000_000: "$123,456,789.00"}
	for in, want := range cases {
		if got := in.Dollars(); got != want {
			t.Errorf("%d.Dollars() = %q; want %q", in, got, want)
		}
	}
}

func TestToUSD(t *testing.T) {
	r := Rates{"jpy": 6_700, "eur": 1_080_000, "kwd": 3_250_000}
	cases := []struct {
		amount   int64
		currency string
		want     Micros
	}{
		{500, "usd", 5_000_000},
		{500, "USD", 5_000_000},
		{1000, "jpy", 6_700_000},
		{1, "eur", 10_800},
		{1000, "kwd", 3_250_000},
	}
	for _, c := range cases {
		got, err := r.ToUSD(c.amount, c.currency)
		if err != nil || got != c.want {
			t.Errorf("ToUSD(%d,%s) = %v,%v; want %v", c.amount, c.currency, got, err, c.want)
		}
	}
	if _, err := r.ToUSD(100, "gbp"); !errors.Is(err, ErrNoRate) {
		t.Errorf("gbp without rate: %v", err)
	}
	if _, err := r.ToUSD(-1, "usd"); err == nil {
		t.Error("negative accepted")
	}
}

func TestExactAmountsRoundUp(t *testing.T) {
	if got, _ := ParseUSDCeil("-0.00830"); got != 8_300 {
		t.Errorf("ParseUSDCeil(-0.00830) = %v", got)
	}
	if got, _ := ParseUSDCeil("0.0079001"); got != 7_901 {
		t.Errorf("ParseUSDCeil(0.0079001) = %v; want rounded up to 7901", got)
	}
	if _, err := CeilMicros(new(big.Rat).SetInt64(MaxUSD + 1)); err == nil {
		t.Error("amount over MaxUSD accepted")
	}
	for in, want := range map[string]string{"12": "12/1", ".5": "1/2", "1e3": "1000/1", "0.25": "1/4"} {
		if got, err := ParseDecimal(in); err != nil || got.RatString() != want && got.String() != want {
			t.Errorf("ParseDecimal(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "1e1000", "abc", "", "1.", "0x10"} {
		if _, err := ParseDecimal(in); err == nil {
			t.Errorf("ParseDecimal(%q) accepted", in)
		}
	}
}
