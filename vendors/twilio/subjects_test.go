package twilio

import (
	"net/url"
	"slices"
	"testing"
)

// TestCountryOf: the country of a destination is its calling code's and,
// in the NANP, its area code's: +1 787 and +1 939 are Puerto Rico, +1 613
// Canada; +882 (international networks) has none.
func TestCountryOf(t *testing.T) {
	for number, want := range map[string]string{
		"+14155550123":   "US",
		"+12125551234":   "US",
		"+17875550123":   "PR",
		"+19395550123":   "PR",
		"+16135550123":   "CA",
		"+13405550123":   "VI",
		"+442071838750":  "GB",
		"+447700900123":  "GB", // a drama number: not valid, still British
		"+33612345678":   "FR",
		"+882123456789":  "",
		"+88234":         "",
		"+80012345678":   "",
		"+1":             "",
		"14155550123":    "",
		"whatsapp:+1415": "",
		"+1999":          "",
	} {
		if got := countryOf(number); got != want {
			t.Errorf("countryOf(%q) = %q, want %q", number, got, want)
		}
	}
}

// TestEstimateSubjects: a message and a call carry their To and its
// country.
func TestEstimateSubjects(t *testing.T) {
	v := newVendor(t, Config{Rates: RateTable{"+1": {SMS: 7900}}})
	for _, path := range []string{messageURL, "/2010-04-01/Accounts/" + clientSID + "/Calls.json"} {
		r, body := formReq("POST", path, url.Values{"To": {" +17875550123 "}, "From": {"+15005550006"}, "Body": {"hi"},
			"Twiml": {"<Response><Say>hi</Say></Response>"}})
		est, err := v.Estimate(r, body)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(est.Subjects[SubjectTo], []string{"+17875550123"}) || !slices.Equal(est.Subjects[SubjectToCountry], []string{"PR"}) {
			t.Errorf("%s: subjects %v", path, est.Subjects)
		}
	}
}
