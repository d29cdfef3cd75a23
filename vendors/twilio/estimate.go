package twilio

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// What a request does, as far as its cost goes.
type endpointKind int

const (
	kindFree          endpointKind = iota
	kindMessage                    // POST …/Messages.json
	kindCall                       // POST …/Calls.json, …/Conferences/{sid}/Participants.json
	kindBuyNumber                  // POST …/IncomingPhoneNumbers[/Local|Mobile|TollFree].json
	kindNoAccountPath              // not under /2010-04-01/Accounts/{sid}
)

func classify(method, path string) endpointKind {
	rest, ok := accountPath(path)
	if !ok {
		return kindNoAccountPath
	}
	if method != http.MethodPost {
		return kindFree
	}
	switch {
	case len(rest) == 1 && rest[0] == "Messages.json":
		return kindMessage
	case len(rest) == 1 && rest[0] == "Calls.json":
		return kindCall
	case len(rest) == 3 && rest[0] == "Conferences" && rest[2] == "Participants.json":
		return kindCall
	case len(rest) == 1 && rest[0] == "IncomingPhoneNumbers.json":
		return kindBuyNumber
	case len(rest) == 2 && rest[0] == "IncomingPhoneNumbers" &&
		(rest[1] == "Local.json" || rest[1] == "Mobile.json" || rest[1] == "TollFree.json"):
		return kindBuyNumber
	}
	return kindFree
}

// Estimate implements vendors.Vendor.
func (v *Vendor) Estimate(r *http.Request, body []byte) (vendors.Estimate, error) {
	switch classify(r.Method, r.URL.Path) {
	case kindNoAccountPath:
		return vendors.Estimate{}, errNoAccount()
	case kindCall:
		return vendors.Estimate{Cost: v.callMax, Known: true}, nil
	case kindBuyNumber:
		return vendors.Estimate{Reason: "buying a phone number has a monthly price Keybrake does not know"}, nil
	case kindMessage:
		return v.estimateMessage(r, body)
	default:
		return vendors.Estimate{Known: true}, nil
	}
}

func (v *Vendor) estimateMessage(r *http.Request, body []byte) (vendors.Estimate, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/x-www-form-urlencoded" {
			return vendors.Estimate{}, &vendors.Error{Status: http.StatusBadRequest, Code: "keybrake_bad_request",
				Message: "Keybrake prices Twilio messages sent as application/x-www-form-urlencoded only."}
		}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return vendors.Estimate{}, &vendors.Error{Status: http.StatusBadRequest, Code: "keybrake_bad_request",
			Message: "Keybrake cannot read this message's form body."}
	}
	to := strings.TrimSpace(form.Get("To"))
	if to == "" {
		return vendors.Estimate{Reason: "the message has no To"}, nil
	}
	mms := len(form["MediaUrl"]) > 0 || strings.EqualFold(form.Get("SendAsMms"), "true")
	text := form.Get("Body")
	if !mms && text == "" && form.Get("ContentSid") != "" {
		return vendors.Estimate{Reason: "the message's text comes from a Content template whose length Keybrake cannot see"}, nil
	}
	rate, reason := v.rateFor(to)
	if reason != "" {
		return vendors.Estimate{Reason: reason}, nil
	}
	if mms {
		if rate.MMS == 0 {
			return vendors.Estimate{Reason: "no MMS rate for " + shortNumber(to)}, nil
		}
		return vendors.Estimate{Cost: rate.MMS, Known: true}, nil
	}
	if rate.SMS == 0 {
		return vendors.Estimate{Reason: "no SMS rate for " + shortNumber(to)}, nil
	}
	segs, _ := Segments(text)
	cost, err := money.MulDivCeil(int64(segs), int64(rate.SMS), 1)
	if err != nil {
		return vendors.Estimate{Reason: "the message is too large to price"}, nil
	}
	return vendors.Estimate{Cost: money.Micros(cost), Known: true}, nil
}

// rateFor returns the rate for a destination, or why there is none.
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
