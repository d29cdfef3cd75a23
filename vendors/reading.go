package vendors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/keybrake/keybrake/internal/text"
)

// One reading of a request, the vendor's (DESIGN, "The money model"): the
// fields a price or a rule reads are read exactly as the vendor reads them,
// and a request that could be read two ways is refused with 400 before
// anything is reserved or forwarded. Each check below is one way a request
// could be read twice; every vendor's pricing uses them.

// CodeAmbiguousRequest is the code of a refusal of a request that could be
// read two ways.
const CodeAmbiguousRequest = "keybrake_ambiguous_request"

// Ambiguous is the 400 refusal of a request that could be read two ways.
func Ambiguous(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeAmbiguousRequest, Message: msg}
}

// MethodOverrideHeaders are the headers some servers and frameworks read as
// the request's real method. A vendor (or a proxy in front of it) that
// honoured one would run a POST that Keybrake priced as a free GET.
var MethodOverrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// CheckMethodOverride refuses a request carrying a method-override header,
// whatever its value: the request has one method, the one on its line.
func CheckMethodOverride(r *http.Request) *Error {
	for _, h := range MethodOverrideHeaders {
		if _, ok := r.Header[http.CanonicalHeaderKey(h)]; ok {
			return Ambiguous("Keybrake refuses the " + h + " header: a request has one method, the one it is sent with.")
		}
	}
	return nil
}

// CheckQuery refuses a query string that names one of fields, the request
// fields a price or a rule reads from the body: the vendor could read the
// query's value, Keybrake the body's. A name matches without letter case,
// and so does a nested form of it ("amount[x]", "max_tokens.x").
func CheckQuery(r *http.Request, fields []string) *Error {
	if r.URL.RawQuery == "" || len(fields) == 0 {
		return nil
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return Ambiguous("Keybrake cannot read this request's query string.")
	}
	for _, k := range sortedKeys(query) {
		name := strings.ToLower(k)
		if i := strings.IndexAny(name, "[."); i >= 0 {
			name = name[:i]
		}
		for _, f := range fields {
			if name == strings.ToLower(f) {
				return Ambiguous("The parameter " + quoteName(k) + " is priced from the body and must not also be in the query string.")
			}
		}
	}
	return nil
}

// MediaType is the media type of a request's Content-Type, lower case,
// without parameters ("" when there is none or it is malformed).
func MediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// IsJSONType reports whether a media type is JSON (application/json or any
// +json type).
func IsJSONType(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

// ReadForm parses a form-encoded body (application/x-www-form-urlencoded)
// as the vendor reads it, refusing what could be read another way: a body
// that is JSON (a vendor that reads JSON whatever the Content-Type would
// see other fields than the form), and any of fields given twice (which one
// counts is the vendor's choice, not Keybrake's; Stripe does not document
// it). A name in fields matches without letter case.
func ReadForm(body []byte, fields []string) (url.Values, *Error) {
	if LooksLikeJSON(body) {
		return nil, Ambiguous("The body is JSON but its Content-Type says it is a form; send it with the Content-Type it is written in.")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, Ambiguous("Keybrake cannot read this request's form body.")
	}
	if len(fields) == 0 {
		return form, nil
	}
	counts := map[string]int{}
	for _, k := range sortedKeys(form) {
		counts[strings.ToLower(k)] += len(form[k])
	}
	for _, f := range fields {
		if counts[strings.ToLower(f)] > 1 {
			return nil, Ambiguous("The parameter " + quoteName(f) + " is given more than once; the vendor would read only one of them.")
		}
	}
	return form, nil
}

// LooksLikeJSON reports whether a body is a JSON object or array.
func LooksLikeJSON(body []byte) bool {
	t := bytes.TrimSpace(body)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t)
}

// DecodeJSON decodes one JSON value the way Keybrake prices it: numbers
// kept exact (json.Number), and a key given twice in any object, at any
// depth, refused (the vendor's parser may keep the first where Go keeps the
// last), as is anything after the value.
func DecodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := uniqueKeys(dec); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errJSON("the body has data after its JSON value")
	}
	var v any
	d2 := json.NewDecoder(bytes.NewReader(raw))
	d2.UseNumber()
	if err := d2.Decode(&v); err != nil {
		return nil, errJSON("the JSON body cannot be parsed")
	}
	return v, nil
}

// errJSON is a JSON body Keybrake cannot read one way only.
type errJSON string

func (e errJSON) Error() string { return string(e) }

// uniqueKeys walks one JSON value from dec and refuses duplicate keys.
func uniqueKeys(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return errJSON("the JSON body cannot be parsed")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return errJSON("the JSON body cannot be parsed")
			}
			k, _ := kt.(string)
			if seen[k] {
				return errJSON("the key " + quoteName(k) + " is given twice in one object")
			}
			seen[k] = true
			if err := uniqueKeys(dec); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := uniqueKeys(dec); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return errJSON("the JSON body cannot be parsed")
	}
	return nil
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// quoteName shows a client-chosen name in a refusal, bounded.
func quoteName(s string) string { return fmt.Sprintf("%q", text.Truncate(s, 60)) }
