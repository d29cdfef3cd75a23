package resend

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"path"
	"strconv"
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
// label with anything else is not written (the call id always is). An
// email that cannot carry the call id is refused before it is sent: a
// client tag named keybrake_…, tags that are not an array of
// {name,value}, a body that is not a JSON object.
func (v *Vendor) Tag(r *http.Request, p string, body []byte, tag vendors.CallTag) ([]byte, error) {
	if r.Method != http.MethodPost || strings.ToLower(path.Clean("/"+p)) != "/emails" {
		return nil, nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, badRequest("Keybrake tags emails sent as application/json only.")
	}
	var email map[string]json.RawMessage
	if err := json.Unmarshal(body, &email); err != nil || email == nil {
		return nil, badRequest("The email is not a JSON object.")
	}
	var tags []emailTag
	if raw, ok := email["tags"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &tags); err != nil {
			return nil, badRequest("tags must be an array of {\"name\",\"value\"}.")
		}
	}
	for _, t := range tags {
		if strings.HasPrefix(strings.ToLower(t.Name), vendors.ReservedPrefix) {
			return nil, badRequest("Keybrake refuses the tag " + strconv.Quote(t.Name) +
				": tags named keybrake_… are written by Keybrake only.")
		}
	}
	tags = append(tags, emailTag{TagCallID, tag.ID})
	if validTag(tag.RunLabel) {
		tags = append(tags, emailTag{TagRun, tag.RunLabel})
	}
	raw, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	email["tags"] = raw
	out, err := json.Marshal(email)
	if err != nil {
		return nil, err
	}
	return out, nil
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
