package stripe

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/keybrake/keybrake/vendors"
)

// Metadata keys Keybrake writes on the objects a call creates.
const (
	MetadataCallID = "keybrake_call_id"
	MetadataRun    = "keybrake_run"
)

// Stripe's metadata limits (docs.stripe.com/metadata): 50 keys, key names
// up to 40 characters, values up to 500.
const (
	maxMetadataKeys  = 50
	maxMetadataValue = 500
)

// taggedCreates are the creates that take metadata and move money (or may,
// under the unknown_cost policy): the objects the reconciler looks for.
var taggedCreates = map[string]bool{
	"/v1/payment_intents":        true,
	"/v1/charges":                true,
	"/v1/refunds":                true,
	"/v1/transfers":              true,
	"/v1/payouts":                true,
	"/v1/topups":                 true,
	"/v1/subscriptions":          true,
	"/v1/invoices":               true,
	"/v1/checkout/sessions":      true,
	"/v1/subscription_schedules": true,
}

// Tag implements vendors.Tagger: on a form-encoded create that takes
// metadata it appends metadata[keybrake_call_id] and metadata[keybrake_run]
// to the client's body, bytes untouched. A key the client set itself is
// left as it is; a run label over 500 characters is not written; nothing is
// written when it would take the object past 50 keys or when the client
// sent a bare metadata parameter (which empties it).
func (v *Vendor) Tag(r *http.Request, path string, body []byte, tag vendors.CallTag) ([]byte, bool) {
	if r.Method != http.MethodPost || !taggedCreates[path] {
		return nil, false
	}
	if len(body) > 0 {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-www-form-urlencoded" {
			return nil, false
		}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, false
	}
	if _, bare := form["metadata"]; bare {
		return nil, false
	}
	keys := 0
	for k := range form {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") {
			keys++
		}
	}
	add := url.Values{}
	for k, val := range map[string]string{MetadataCallID: tag.ID, MetadataRun: tag.RunLabel} {
		if val == "" || len(val) > maxMetadataValue {
			continue
		}
		if _, theirs := form["metadata["+k+"]"]; theirs {
			continue
		}
		add.Set("metadata["+k+"]", val)
	}
	if len(add) == 0 || keys+len(add) > maxMetadataKeys {
		return nil, false
	}
	out := make([]byte, 0, len(body)+128)
	out = append(out, body...)
	if len(body) > 0 {
		out = append(out, '&')
	}
	out = append(out, add.Encode()...)
	return out, true
}

var _ vendors.Tagger = (*Vendor)(nil)
