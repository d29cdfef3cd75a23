package resend

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/keybrake/keybrake/vendors"
)

// Tag names Keybrake writes on the emails a call sends.
const (
	TagCallID = "keybrake_call_id"
	TagRun    = "keybrake_run"
)

// maxTagLength is Resend's bound on a tag's name and value.
const maxTagLength = 256

type emailTag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Tag implements vendors.Tagger: on POST /emails it adds the tags
// keybrake_call_id and keybrake_run to the email's tags. Resend allows only
// ASCII letters, digits, "_" and "-" in a tag, up to 256 characters: a run
// label with anything else is not written. A tag name the client uses
// itself is left as it is; a body whose tags are not an array of
// {name,value} is forwarded untouched.
func (v *Vendor) Tag(r *http.Request, p string, body []byte, tag vendors.CallTag) ([]byte, bool) {
	if r.Method != http.MethodPost || strings.ToLower(path.Clean("/"+p)) != "/emails" {
		return nil, false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, false
	}
	var email map[string]json.RawMessage
	if err := json.Unmarshal(body, &email); err != nil || email == nil {
		return nil, false
	}
	var tags []emailTag
	if raw, ok := email["tags"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &tags); err != nil {
			return nil, false
		}
	}
	added := false
	for _, t := range []emailTag{{TagCallID, tag.ID}, {TagRun, tag.RunLabel}} {
		if !validTag(t.Value) || hasTag(tags, t.Name) {
			continue
		}
		tags = append(tags, t)
		added = true
	}
	if !added {
		return nil, false
	}
	raw, err := json.Marshal(tags)
	if err != nil {
		return nil, false
	}
	email["tags"] = raw
	out, err := json.Marshal(email)
	if err != nil {
		return nil, false
	}
	return out, true
}

func hasTag(tags []emailTag, name string) bool {
	for _, t := range tags {
		if t.Name == name {
			return true
		}
	}
	return false
}

func validTag(s string) bool {
	if s == "" || len(s) > maxTagLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var _ vendors.Tagger = (*Vendor)(nil)
