package twilio

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// A message's or a call's To is priced trimmed of surrounding space (a
// form's "+" decodes to a space: To=%2B15551234567+ is "+15551234567 ").
// It is forwarded and recorded in that same form, so that what Twilio
// dials, what Keybrake priced and what the reconciler lists by are one
// number.

// dialsTo are the creates whose To is priced.
var dialsTo = map[endpointKind]bool{kindMessage: true, kindCall: true, kindParticipant: true}

// trimTo rewrites the body of a create that dials To so that To is sent
// trimmed, as it was priced; every other parameter keeps its bytes.
func trimTo(r *http.Request) error {
	if r.Method != http.MethodPost || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if kind, _ := classify(r.Method, r.URL.Path); !dialsTo[kind] {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return badRequest("The request body could not be read.")
	}
	if out, changed := trimmedTo(body); changed {
		body = out
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nil
}

// trimmedTo returns body with the value of every To parameter (any letter
// case) trimmed of surrounding space, and whether it changed anything.
func trimmedTo(body []byte) ([]byte, bool) {
	parts := strings.Split(string(body), "&")
	changed := false
	for i, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil || !strings.EqualFold(name, "to") {
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		if t := strings.TrimSpace(val); t != val {
			parts[i] = k + "=" + url.QueryEscape(t)
			changed = true
		}
	}
	if !changed {
		return body, false
	}
	return []byte(strings.Join(parts, "&")), true
}
