package twilio

import (
	"fmt"

	"github.com/keybrake/keybrake/money"
)

// Rate is what Twilio charges for messages to one destination prefix.
type Rate struct {
	// SMS is the price of one SMS segment. Zero: no SMS rate, so an SMS
	// there is of unknown cost.
	SMS money.Micros `json:"sms"`
	// MMS is the price of one MMS message. Zero: no MMS rate, so an MMS
	// there is of unknown cost.
	MMS money.Micros `json:"mms"`
	// Unknown marks a prefix with no known rate, carved out of a shorter
	// one: messages to it are of unknown cost (or priced at
	// Config.DefaultRate when that is set).
	Unknown bool `json:"unknown,omitempty"`
}

// RateTable maps an E.164 prefix ("+1", "+44", "+1876") to its Rate. The
// longest prefix of a destination number wins.
type RateTable map[string]Rate

// Default rates: Twilio's public US and Canada prices for long-code
// messaging (twilio.com/en-us/sms/pricing/us), as reported in July 2026:
// $0.0083 per outbound SMS segment and $0.0220 per outbound MMS. Check them
// against your account's price sheet. Carrier
// pass-through fees (about $0.0025–$0.0062 per segment in the US) are
// billed by Twilio on top and are not included: raise the rates to cover
// them if your caps must.
const (
	DefaultSMS money.Micros = 8_300  // $0.0083 per segment, US/Canada
	DefaultMMS money.Micros = 22_000 // $0.0220 per message, US/Canada
	// DefaultRatesDate is when the default rates were last checked.
	DefaultRatesDate = "2026-07"
)

// nanpElsewhere lists the North American Numbering Plan area codes (+1…)
// outside the US states and Canada: Caribbean countries and US
// territories, which Twilio prices separately (Puerto Rico, for instance, at
// several times the US rate). They are carved out of +1 as unknown.
var nanpElsewhere = []string{
	"242", "246", "264", "268", "284", "340", "345", "441", "473", "649",
	"658", "664", "670", "671", "684", "721", "758", "767", "784", "787",
	"809", "829", "849", "868", "869", "876", "939",
}

// DefaultRates returns the built-in rate table: +1 (US and Canada) at the
// default rates, with the other NANP area codes of unknown cost.
func DefaultRates() RateTable {
	t := RateTable{"+1": {SMS: DefaultSMS, MMS: DefaultMMS}}
	for _, ac := range nanpElsewhere {
		t["+1"+ac] = Rate{Unknown: true}
	}
	return t
}

// validPrefix checks an E.164 prefix: "+" and 1 to 15 digits.
func validPrefix(p string) error {
	if len(p) < 2 || len(p) > 16 || p[0] != '+' {
		return fmt.Errorf("rate prefix %q: want + and 1 to 15 digits", p)
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return fmt.Errorf("rate prefix %q: want + and 1 to 15 digits", p)
		}
	}
	return nil
}

// isE164 reports whether s is a phone number in E.164 form.
func isE164(s string) bool { return validPrefix(s) == nil && len(s) >= 3 }

// lookup returns the rate of the longest prefix of an E.164 number.
func (t RateTable) lookup(number string) (Rate, string, bool) {
	for l := len(number); l >= 2; l-- {
		if r, ok := t[number[:l]]; ok {
			return r, number[:l], true
		}
	}
	return Rate{}, "", false
}
