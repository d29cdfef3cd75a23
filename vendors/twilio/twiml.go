package twilio

import (
	"encoding/xml"
	"errors"
	"io"
	"net/url"
	"strings"
)

// TwiML decides what a call does once it is answered, and TwiML that
// dials, records, transcribes, redirects, gathers into another document or
// speaks with a third-party voice adds charges on top of the call's
// minutes. Keybrake prices a call by its TimeLimit only, so it lets a call
// run only TwiML it can read and knows to add nothing:
//
//   - inline Twiml made only of the verbs in twimlFree, with <Say> in one
//     of Twilio's basic voices;
//   - a Url (or FallbackUrl, or a participant's WaitUrl) under a prefix the
//     operator declared with twiml_url, vouching for what those documents
//     do.
//
// Everything else is of unknown cost.

// twimlFree are the verbs that add no charge to a call's minutes: playing
// audio, pausing, hanging up, rejecting. <Say> is checked on its own.
var twimlFree = map[string]bool{"Play": true, "Pause": true, "Hangup": true, "Reject": true}

// basicVoices are Twilio's basic text-to-speech voices. Any other voice
// (Polly.*, Google.*, a voice left to the account's default provider,
// which may be Amazon Polly) is synthesized by a third-party provider and
// billed per character.
var basicVoices = map[string]bool{"man": true, "woman": true}

// ssmlInSay are the SSML tags Twilio reads inside <Say>: they shape the
// speech and add no charge of their own.
var ssmlInSay = map[string]bool{"break": true, "emphasis": true, "lang": true, "p": true, "phoneme": true,
	"prosody": true, "s": true, "say-as": true, "sub": true, "w": true}

// twimlReason returns why inline TwiML could cost more than the call's
// minutes, or "" when it cannot.
func twimlReason(doc string) string {
	dec := xml.NewDecoder(strings.NewReader(doc))
	dec.Strict = true
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "the call's TwiML is not well-formed XML, so Keybrake cannot tell what it does"
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			if _, end := tok.(xml.EndElement); end {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		name := el.Name.Local
		if el.Name.Space != "" {
			return "the call's TwiML uses a namespaced element, which Keybrake cannot price"
		}
		switch parent := strings.Join(stack, "/"); {
		case len(stack) == 0:
			if name != "Response" {
				return "the call's TwiML must be a <Response>"
			}
		case parent == "Response":
			if name == "Say" {
				if !basicVoices[strings.ToLower(attr(el, "voice"))] {
					return `the call's TwiML <Say> must name a basic voice (voice="man" or "woman"); other voices are billed per character`
				}
			} else if !twimlFree[name] {
				return "the call's TwiML uses <" + name + ">, whose charges Keybrake cannot see"
			}
		case strings.HasPrefix(parent, "Response/Say"):
			if !ssmlInSay[name] {
				return "the call's TwiML has <" + name + "> inside <Say>, which Keybrake cannot price"
			}
		default:
			return "the call's TwiML nests <" + name + "> where Keybrake cannot price it"
		}
		stack = append(stack, name)
	}
	if len(stack) != 0 {
		return "the call's TwiML is not well-formed XML, so Keybrake cannot tell what it does"
	}
	return ""
}

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// trustedTwiML reports whether a TwiML document URL lies under one of the
// prefixes the operator vouches for: same scheme and host, and a path that
// starts with the prefix's path. A URL with user info, a different port or
// a path that only shares leading characters with a segment does not.
func trustedTwiML(raw string, prefixes []*url.URL) bool {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return false
	}
	if strings.Contains(u.EscapedPath(), "..") || strings.Contains(strings.ToLower(u.EscapedPath()), "%2e") {
		return false
	}
	if u.Path == "" {
		u.Path = "/"
	}
	for _, p := range prefixes {
		if !strings.EqualFold(u.Scheme, p.Scheme) || !strings.EqualFold(u.Host, p.Host) {
			continue
		}
		if u.Path == p.Path || (strings.HasPrefix(u.Path, p.Path) &&
			(strings.HasSuffix(p.Path, "/") || u.Path[len(p.Path)] == '/')) {
			return true
		}
	}
	return false
}

// parseTwiMLPrefixes checks the twiml_url prefixes of a vendor block:
// absolute http(s) URLs with a host, no user info, query or fragment.
func parseTwiMLPrefixes(raw []string) ([]*url.URL, error) {
	out := make([]*url.URL, 0, len(raw))
	for _, s := range raw {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, errors.New("twiml_url " + s + ": want an http(s) URL prefix with a host and no query, e.g. https://twiml.example.com/calls/")
		}
		if u.Path == "" {
			u.Path = "/"
		}
		out = append(out, u)
	}
	return out, nil
}
