package twilio

import (
	"net/http"
	"strings"

	"github.com/keybrake/keybrake/vendors"
)

// What a request does, as far as its cost goes.
type endpointKind int

const (
	kindUnknown       endpointKind = iota // a POST on no list: unknown cost
	kindFree                              // GET, HEAD, DELETE
	kindOtherMethod                       // PUT, PATCH…: Twilio's API has none
	kindMessage                           // POST …/Messages
	kindMessageUpdate                     // POST …/Messages/{sid}
	kindCall                              // POST …/Calls
	kindCallUpdate                        // POST …/Calls/{sid}
	kindParticipant                       // POST …/Conferences/{sid}/Participants
	kindBuyNumber                         // POST …/IncomingPhoneNumbers[/Local|Mobile|TollFree]
	kindCredential                        // mints or reveals a credential: refused
	kindNoAccountPath                     // not under /2010-04-01/Accounts/{sid}
)

// classify tells what a request does. what names a credential endpoint.
func classify(method, path string) (kind endpointKind, what string) {
	if accountsList(path) {
		return kindCredential, "Twilio's Accounts list (creating a sub-account mints credentials; the list carries auth tokens)"
	}
	rest, ok := accountPath(path)
	if !ok {
		return kindNoAccountPath, ""
	}
	res := resourceNames(rest)
	if len(res) == 0 {
		return kindCredential, "the Twilio Account resource (its answer carries the account's auth token)"
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		return kindFree, ""
	case http.MethodPost:
	default:
		return kindOtherMethod, ""
	}
	if what := mintsCredential(res); what != "" {
		return kindCredential, what
	}
	is := func(names ...string) bool {
		if len(names) != len(res) {
			return false
		}
		for i, n := range names {
			if n != "*" && !strings.EqualFold(res[i], n) {
				return false
			}
		}
		return true
	}
	switch {
	case is("Messages"):
		return kindMessage, ""
	case is("Messages", "*"):
		return kindMessageUpdate, ""
	case is("Calls"):
		return kindCall, ""
	case is("Calls", "*"):
		return kindCallUpdate, ""
	case is("Conferences", "*", "Participants"):
		return kindParticipant, ""
	case is("IncomingPhoneNumbers"), is("IncomingPhoneNumbers", "Local"),
		is("IncomingPhoneNumbers", "Mobile"), is("IncomingPhoneNumbers", "TollFree"):
		return kindBuyNumber, ""
	}
	return kindUnknown, ""
}

// mintsCredential names a POST that creates or changes a credential that
// can spend on the account without Keybrake: an API key, a signing key, a
// SIP credential or IP access list (SIP endpoints that register or send
// calls with them are billed to the account), or a domain's mapping to
// them.
func mintsCredential(res []string) string {
	first := strings.ToLower(res[0])
	switch first {
	case "keys":
		return "Twilio API keys (…/Keys)"
	case "signingkeys":
		return "Twilio signing keys (…/SigningKeys)"
	case "sip":
	default:
		return ""
	}
	if len(res) < 2 {
		return ""
	}
	switch strings.ToLower(res[1]) {
	case "credentiallists":
		return "Twilio SIP credential lists (…/SIP/CredentialLists)"
	case "ipaccesscontrollists":
		return "Twilio SIP IP access control lists (…/SIP/IpAccessControlLists)"
	case "domains":
		for _, s := range res[2:] {
			switch strings.ToLower(s) {
			case "credentiallistmappings", "ipaccesscontrollistmappings", "auth":
				return "Twilio SIP domain credential and IP mappings (…/SIP/Domains/{sid}/…Mappings)"
			}
		}
	}
	return ""
}

// credentialRefusal refuses a credential endpoint.
func credentialRefusal(what string) *vendors.Error {
	e := vendors.MintsCredential(what)
	if strings.Contains(what, "auth token") {
		e.Message = "Keybrake refuses " + what + ": it would hand out a vendor credential, which would get around every cap. No vault key may call it."
	}
	return e
}
