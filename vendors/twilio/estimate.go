package twilio

import (
	"net/http"
	"strings"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Reasons a call is free (docs/vendors.md lists the same).
const (
	freeRead   = "reads and deletes move no money"
	freeRedact = "redacting or cancelling a message moves no money"
	freeHangUp = "hanging up a call moves no money"
)

// Estimate implements vendors.Vendor.
func (v *Vendor) Estimate(r *http.Request, body []byte) (vendors.Estimate, error) {
	kind, what := classify(r.Method, r.URL.Path)
	switch kind {
	case kindCredential:
		return vendors.Estimate{}, credentialRefusal(what)
	case kindNoAccountPath:
		return vendors.Estimate{}, errNoAccount()
	case kindFree:
		return vendors.Estimate{Known: true, Reason: freeRead}, nil
	case kindOtherMethod:
		return vendors.Estimate{Reason: "Twilio's API takes GET, POST and DELETE; Keybrake does not price " + r.Method}, nil
	case kindMessage:
		return v.estimateMessage(r, body)
	case kindMessageUpdate:
		return estimateMessageUpdate(r, body)
	case kindCall:
		return v.estimateCall(r, body, callMulti, callExtras)
	case kindParticipant:
		return v.estimateCall(r, body, participantMulti, participantExtras)
	case kindCallUpdate:
		return estimateCallUpdate(r, body)
	case kindBuyNumber:
		return vendors.Estimate{Reason: "buying a phone number has a monthly price Keybrake does not know"}, nil
	}
	return vendors.Estimate{Reason: "POST " + shortPath(r.URL.Path) + " is not on Keybrake's list of priced or free Twilio endpoints"}, nil
}

// messageMulti are the message parameters Twilio reads every value of.
var messageMulti = map[string]bool{"mediaurl": true, "persistentaction": true}

// Twilio's limits on a message's media.
const (
	maxMedia = 10
	// mmsLinkChars is what Keybrake allows per media for the link Twilio's
	// MMS Converter appends when it sends an MMS as SMS (a newline and a
	// short URL), to bound the SMS segments of a converted MMS.
	mmsLinkChars = 48
)

func (v *Vendor) estimateMessage(r *http.Request, body []byte) (est vendors.Estimate, err error) {
	form, bad := readForm(r, body, messageMulti)
	if bad != nil {
		return vendors.Estimate{}, bad
	}
	if _, ok := form["contentsid"]; ok {
		return vendors.Estimate{Reason: "the message comes from a Content template (ContentSid) whose length and channel Keybrake cannot see"}, nil
	}
	to := strings.TrimSpace(form.Get("to"))
	if to == "" {
		return vendors.Estimate{Reason: "the message has no To"}, nil
	}
	// Every estimate from here on carries the destination, priced or not:
	// a key's rules see it even when the unknown_cost policy reserves.
	defer func() { est.Subjects = toSubjects(to) }()
	media := len(form["mediaurl"])
	if media > maxMedia {
		return vendors.Estimate{}, badRequest("Twilio takes at most 10 MediaUrl per message.")
	}
	mms := media > 0 || strings.EqualFold(strings.TrimSpace(form.Get("sendasmms")), "true")
	text := form.Get("body")
	rate, reason := v.rateFor(to)
	if reason != "" {
		return vendors.Estimate{Reason: reason}, nil
	}
	if rate.SMS == 0 {
		// An MMS Twilio cannot deliver as MMS is sent as SMS (MMS
		// Converter), so an MMS needs the SMS rate too.
		return vendors.Estimate{Reason: "no SMS rate for " + shortNumber(to)}, nil
	}
	if mms {
		if rate.MMS == 0 {
			return vendors.Estimate{Reason: "no MMS rate for " + shortNumber(to)}, nil
		}
		text += strings.Repeat(strings.Repeat("a", mmsLinkChars), media)
	}
	segs, _, overfull := countSegments(text)
	if overfull {
		return vendors.Estimate{Reason: "a character of the message is too long for Twilio's segments (" +
			"Twilio's calculator packs it into a segment that cannot hold it); what Twilio bills for it is not documented"}, nil
	}
	cost, err := money.MulDivCeil(int64(segs), int64(rate.SMS), 1)
	if err != nil {
		return vendors.Estimate{Reason: "the message is too large to price"}, nil
	}
	if mms && rate.MMS > money.Micros(cost) {
		cost = int64(rate.MMS)
	}
	return vendors.Estimate{Cost: money.Micros(cost), Known: true}, nil
}

// estimateMessageUpdate: updating a message only redacts its body
// (Body="") or cancels a scheduled message (Status=canceled); anything else
// is not on the free list.
func estimateMessageUpdate(r *http.Request, body []byte) (vendors.Estimate, error) {
	form, bad := readForm(r, body, nil)
	if bad != nil {
		return vendors.Estimate{}, bad
	}
	if k := onlyParams(form, "body", "status"); k != "" ||
		(form.Has("body") && form.Get("body") != "") ||
		(form.Has("status") && form.Get("status") != "canceled") {
		return vendors.Estimate{Reason: "a message update is free only to redact it (Body empty) or cancel it (Status canceled)"}, nil
	}
	return vendors.Estimate{Known: true, Reason: freeRedact}, nil
}

// rateFor returns the message rate for a destination, or why there is none.
func (v *Vendor) rateFor(to string) (Rate, string) {
	if !isE164(to) {
		if v.defaultRate != nil {
			return *v.defaultRate, ""
		}
		return Rate{}, "destination " + shortNumber(to) + " is not an E.164 phone number; other channels (WhatsApp, Messenger…) are not priced"
	}
	r, _, ok := v.rates.lookup(to)
	if !ok || r.Unknown {
		if v.defaultRate != nil {
			return *v.defaultRate, ""
		}
		return Rate{}, "no message rate configured for " + shortNumber(to)
	}
	return r, ""
}

// shortNumber shows the start of a destination in a refusal (enough to see
// its country) without echoing a whole phone number or arbitrary input.
func shortNumber(s string) string {
	r := []rune(s)
	if len(r) > 5 {
		return string(r[:5]) + "…"
	}
	return s
}

// shortPath shows the resource part of a path in a refusal, bounded.
func shortPath(p string) string {
	if rest, ok := accountPath(p); ok {
		p = "…/" + strings.Join(rest, "/")
	}
	if r := []rune(p); len(r) > 120 {
		p = string(r[:120]) + "…"
	}
	return p
}
