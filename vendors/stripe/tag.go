package stripe

import (
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keybrake/keybrake/internal/text"
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
	// tagKeys is how many keys Keybrake may add: the call id, the run.
	tagKeys = 2
)

// taggedCreates are the creates that take metadata and move money (or may,
// under the unknown_cost policy): the objects the reconciler looks for.
// Each has a list endpoint at the same path that filters on created.
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

// checkMetadata refuses, before anything is reserved, a write that would
// leave an object Keybrake lets the key create without Keybrake's tag, or
// would let the key forge, change or remove a tag: any parameter naming a
// keybrake_ key (in metadata or nested metadata, body or query), a bare
// metadata parameter (Stripe empties the map on metadata=), and on a
// tagged create a body Keybrake cannot add to (not form-encoded) or a map
// with no room left for the tag (the client's keys plus Keybrake's two
// must stay within Stripe's 50).
func checkMetadata(r *http.Request, path string, body []byte) error {
	if r.Method != http.MethodPost {
		return nil
	}
	create := taggedCreates[path]
	form, err := parseForm(r, body)
	if err != nil {
		if create {
			return err
		}
		// Not a form (a file upload): only the query can be read here.
		if form, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return nil
		}
	}
	keys := 0
	for k := range form {
		lower := strings.ToLower(k)
		switch {
		case lower == "metadata":
			return badParam("keybrake_metadata_cleared", "Keybrake refuses a bare metadata parameter: it would empty the "+
				"object's metadata, and with it the keybrake_call_id tag Keybrake reconciles calls by. Set or unset your "+
				"own keys one by one (metadata[key]=value).")
		case strings.Contains(lower, vendors.ReservedPrefix):
			return badParam("keybrake_reserved_metadata", "Keybrake refuses the parameter "+text.Truncate(k, 80)+
				": metadata keys starting with keybrake_ are written by Keybrake only.")
		case strings.HasPrefix(k, "metadata["):
			keys++
		}
	}
	if create && keys+tagKeys > maxMetadataKeys {
		return badParam("keybrake_metadata_full", "Keybrake refuses this create: it carries "+strconv.Itoa(keys)+
			" metadata keys, and Keybrake needs room for its own two (keybrake_call_id, keybrake_run) within "+
			"Stripe's 50. Send at most 48.")
	}
	return nil
}

// Tag implements vendors.Tagger: on a form-encoded create that takes
// metadata it appends metadata[keybrake_call_id] and metadata[keybrake_run]
// to the client's body, bytes untouched; a run label over 500 characters is
// not written. A create that cannot carry the call id (checkMetadata) is
// refused.
func (v *Vendor) Tag(r *http.Request, path string, body []byte, tag vendors.CallTag) ([]byte, error) {
	if r.Method != http.MethodPost || !taggedCreates[path] {
		return nil, nil
	}
	if err := checkMetadata(r, path, body); err != nil {
		return nil, err
	}
	if len(body) > 0 {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" && mt != "" {
			return nil, badParam("keybrake_unsupported_content_type", "Keybrake tags Stripe creates sent as application/x-www-form-urlencoded only.")
		}
	}
	add := url.Values{"metadata[" + MetadataCallID + "]": {tag.ID}}
	if tag.RunLabel != "" && len(tag.RunLabel) <= maxMetadataValue {
		add.Set("metadata["+MetadataRun+"]", tag.RunLabel)
	}
	out := make([]byte, 0, len(body)+128)
	out = append(out, body...)
	if len(body) > 0 {
		out = append(out, '&')
	}
	out = append(out, add.Encode()...)
	return out, nil
}

var _ vendors.Tagger = (*Vendor)(nil)
