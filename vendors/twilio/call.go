package twilio

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Twilio's bounds on a call's TimeLimit, in seconds.
const (
	// DefaultTimeLimit is the TimeLimit Twilio applies when none is given:
	// four hours.
	DefaultTimeLimit = 14400
	// maxTimeLimit is the largest TimeLimit Keybrake prices: 24 hours.
	maxTimeLimit = 86400
)

// The parameters Twilio reads every value of, for a call and for a
// conference participant.
var (
	callMulti        = map[string]bool{"statuscallbackevent": true, "recordingstatuscallbackevent": true}
	participantMulti = map[string]bool{"statuscallbackevent": true, "recordingstatuscallbackevent": true,
		"conferencestatuscallbackevent": true, "conferencerecordingstatuscallbackevent": true}
)

// extra is a parameter that adds charges Keybrake cannot bound from the
// request (recording minutes and storage, answering machine detection,
// transcription), unless absent or set to one of off.
type extra struct {
	param string
	off   []string
}

var (
	callExtras = []extra{
		{"Record", []string{"false"}},
		{"RecordingConfigurationId", nil},
		{"MachineDetection", nil},
		{"AsyncAmd", []string{"false"}},
		{"Transcribe", []string{"false"}},
		{"TranscriptionConfiguration", nil},
	}
	participantExtras = append(append([]extra{}, callExtras...),
		extra{"ConferenceRecord", []string{"false", "do-not-record"}})
)

// estimateCall prices a call (or a conference participant, which dials
// out): TimeLimit in started minutes × the destination's per-minute rate.
// Minimum is one minute; Fit lowers TimeLimit to what the reservation
// covers, so the call cannot outspend it.
func (v *Vendor) estimateCall(r *http.Request, body []byte, multi map[string]bool, extras []extra) (est vendors.Estimate, err error) {
	form, bad := readForm(r, body, multi)
	if bad != nil {
		return vendors.Estimate{}, bad
	}
	// Every estimate from here on carries the destination, priced or not
	// (see estimateMessage).
	defer func() { est.Subjects = toSubjects(form.Get("to")) }()
	for _, x := range extras {
		if !isOff(form, strings.ToLower(x.param), x.off...) {
			return vendors.Estimate{Reason: "the call sets " + x.param + ", whose charges Keybrake cannot bound"}, nil
		}
	}
	if reason := v.documentsReason(form); reason != "" {
		return vendors.Estimate{Reason: reason}, nil
	}
	to := strings.TrimSpace(form.Get("to"))
	if to == "" {
		return vendors.Estimate{Reason: "the call has no To"}, nil
	}
	rate, reason := v.voiceRateFor(to)
	if reason != "" {
		return vendors.Estimate{Reason: reason}, nil
	}
	limit := DefaultTimeLimit
	if form.Has("timelimit") {
		n, err := strconv.Atoi(strings.TrimSpace(form.Get("timelimit")))
		if err != nil || n < 1 || n > maxTimeLimit {
			return vendors.Estimate{}, badRequest("TimeLimit must be a whole number of seconds from 1 to 86400.")
		}
		limit = n
	}
	asked, minutes := limit, int64((limit+59)/60)
	if v.callMax > 0 {
		afford := int64(v.callMax / rate)
		if afford < 1 {
			return vendors.Estimate{Reason: "call_max is below one minute's price to " + shortNumber(to)}, nil
		}
		if afford < minutes {
			minutes, limit = afford, int(afford*60)
		}
	}
	if minutes == 1 && asked > 60 {
		// One minute is both Minimum and Cost, so nothing would call Fit
		// to lower TimeLimit: the request must bound itself.
		return vendors.Estimate{Reason: "call_max buys one minute to " + shortNumber(to) + "; send TimeLimit 60 or less"}, nil
	}
	cost, err := money.MulDivCeil(minutes, int64(rate), 1)
	if err != nil {
		return vendors.Estimate{Reason: "the call is too long to price"}, nil
	}
	return vendors.Estimate{
		Cost:    money.Micros(cost),
		Known:   true,
		Minimum: rate,
		Fit:     fitTimeLimit(body, rate, limit),
	}, nil
}

// documentParams are the parameters naming a TwiML document Twilio fetches
// for a call: its instructions, their fallback, a participant's hold music.
var documentParams = []string{"url", "fallbackurl", "waiturl"}

// documentsReason returns why the TwiML a call runs could add charges on
// top of its minutes, or "" when Keybrake can vouch for it (see twiml.go).
func (v *Vendor) documentsReason(form url.Values) string {
	if form.Has("applicationsid") {
		return "the call runs a TwiML App, whose documents Keybrake cannot see; pass the app's voice Url instead, under a twiml_url the vendor block trusts"
	}
	if form.Has("twiml") {
		if reason := twimlReason(form.Get("twiml")); reason != "" {
			return reason
		}
	}
	for _, p := range documentParams {
		if form.Has(p) && !trustedTwiML(form.Get(p), v.twimlURLs) {
			return "the call's TwiML at " + p + " is not under a twiml_url the vendor block trusts, so Keybrake cannot see what it dials, records or says"
		}
	}
	return ""
}

// fitTimeLimit returns the Fit of a call: the form body with exactly one
// TimeLimit, the whole minutes reserved buys, never more than limit. A
// time limit in any letter case is replaced; every other parameter is kept
// byte for byte.
func fitTimeLimit(body []byte, rate money.Micros, limit int) func(money.Micros) ([]byte, error) {
	return func(reserved money.Micros) ([]byte, error) {
		minutes := int64(reserved / rate)
		if minutes < 1 {
			return nil, &vendors.Error{Status: http.StatusTooManyRequests, Code: "keybrake_cap_hit", CapHit: true,
				Message: "This vault key's cap does not cover one minute of this call."}
		}
		secs := limit
		if minutes*60 < int64(secs) {
			secs = int(minutes * 60)
		}
		var out bytes.Buffer
		for _, pair := range bytes.Split(body, []byte("&")) {
			if len(pair) == 0 {
				continue
			}
			k, _, _ := bytes.Cut(pair, []byte("="))
			if name, err := url.QueryUnescape(string(k)); err != nil || strings.EqualFold(name, "TimeLimit") {
				continue
			}
			out.Write(pair)
			out.WriteByte('&')
		}
		out.WriteString("TimeLimit=" + strconv.Itoa(secs))
		return out.Bytes(), nil
	}
}

// estimateCallUpdate: updating a call is free only to hang it up
// (Status=completed or canceled) with nothing that redirects or extends it
// (Url, Twiml, TimeLimit…); status callbacks may be set.
func estimateCallUpdate(r *http.Request, body []byte) (vendors.Estimate, error) {
	form, bad := readForm(r, body, nil)
	if bad != nil {
		return vendors.Estimate{}, bad
	}
	st := form.Get("status")
	if k := onlyParams(form, "status", "statuscallback", "statuscallbackmethod"); k != "" || (st != "completed" && st != "canceled") {
		return vendors.Estimate{Reason: "a call update is free only to hang up (Status completed or canceled); Url, Twiml or TimeLimit can make it cost more"}, nil
	}
	return vendors.Estimate{Known: true, Reason: freeHangUp}, nil
}
