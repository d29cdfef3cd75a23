package twilio

import "github.com/keybrake/keybrake/money"

// VoiceRate is what Twilio charges per minute of a call to one destination
// prefix.
type VoiceRate struct {
	// PerMinute is the price of one started minute.
	PerMinute money.Micros `json:"per_minute,omitempty"`
	// Unknown marks a prefix with no known rate, carved out of a shorter
	// one: calls to it are of unknown cost (or priced at
	// Config.DefaultVoiceRate when that is set).
	Unknown bool `json:"unknown,omitempty"`
}

// VoiceRateTable maps an E.164 prefix to its VoiceRate; the longest prefix
// of a destination number wins.
type VoiceRateTable map[string]VoiceRate

// DefaultVoicePerMinute is Twilio's public price of an outbound call to a
// US number, per minute, billed per started minute
// (twilio.com/en-us/voice/pricing/us, "Make calls" $0.0140/min, as
// reported in 2025–2026). Check it against your account's price sheet.
const DefaultVoicePerMinute money.Micros = 14_000

// voiceElsewhere lists the +1 area codes priced apart from the US
// mainland for calls: Alaska (907) and Canada's northern territories (867),
// besides the Caribbean and US territories (nanpElsewhere).
var voiceElsewhere = []string{"867", "907"}

// DefaultVoiceRates returns the built-in voice rate table: +1 at
// DefaultVoicePerMinute, with the other NANP area codes, Alaska and the
// northern Canadian territories of unknown cost.
func DefaultVoiceRates() VoiceRateTable {
	t := VoiceRateTable{"+1": {PerMinute: DefaultVoicePerMinute}}
	for _, ac := range append(append([]string{}, nanpElsewhere...), voiceElsewhere...) {
		t["+1"+ac] = VoiceRate{Unknown: true}
	}
	return t
}

// voiceRateFor returns the per-minute rate of a call's destination, or why
// there is none.
func (v *Vendor) voiceRateFor(to string) (money.Micros, string) {
	if isE164(to) {
		for l := len(to); l >= 2; l-- {
			if r, ok := v.voiceRates[to[:l]]; ok {
				if !r.Unknown {
					return r.PerMinute, ""
				}
				break
			}
		}
	}
	if v.defaultVoice > 0 {
		return v.defaultVoice, ""
	}
	return 0, "no voice rate configured for " + shortNumber(to)
}
