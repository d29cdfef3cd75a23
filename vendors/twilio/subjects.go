package twilio

import (
	"github.com/keybrake/keybrake/vendors"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/keybrake/keybrake/rules"
)

// Subjects of a Twilio message or call, as rules name them.
const (
	// SubjectTo is the destination as Twilio reads it, an E.164 number
	// ("+14155550123"); allow lists may give prefixes ("+1415*").
	SubjectTo = "to"
	// SubjectToCountry is the ISO 3166 code of the country the
	// destination belongs to, from its calling code and, inside the North
	// American Numbering Plan, its area code: +1 787 is PR, not US. A
	// number with no country (+882, international networks) or that
	// cannot be told has none, and a to_country rule refuses it.
	SubjectToCountry = "to_country"
)

// SubjectNames are the subjects a Twilio call may carry.
var SubjectNames = []string{SubjectTo, SubjectToCountry}

// toSubjects are the subjects of a destination.
func toSubjects(to string) rules.Subjects {
	to = strings.TrimSpace(to)
	if to == "" {
		return nil
	}
	s := rules.Subjects{SubjectTo: {to}}
	if c := countryOf(to); c != "" {
		s[SubjectToCountry] = []string{c}
	}
	return s
}

// nanp is the calling code shared by the countries of the North American
// Numbering Plan, told apart by area code.
const nanp = 1

// countryOf is the ISO code of an E.164 number's country, "" when it has
// none or cannot be told. A number phonenumbers cannot match to a region
// of its calling code takes the calling code's main country, except in the
// NANP, where only the area code decides (the main country, US, would be
// wrong for every other one).
func countryOf(number string) string {
	if !isE164(number) {
		return ""
	}
	n, err := phonenumbers.Parse(number, "")
	if err != nil {
		return ""
	}
	region := phonenumbers.GetRegionCodeForNumber(n)
	if region == "" && n.GetCountryCode() != nanp {
		region = phonenumbers.GetRegionCodeForCountryCode(int(n.GetCountryCode()))
	}
	switch region {
	case "", "ZZ", "001": // unknown; non-geographic (+800, +808, +870, +881, +882, +883, +979)
		return ""
	}
	return region
}

// SubjectNames implements vendors.SubjectNamer.
func (v *Vendor) SubjectNames() []string { return SubjectNames }

// Interface guard.
var _ vendors.SubjectNamer = (*Vendor)(nil)
