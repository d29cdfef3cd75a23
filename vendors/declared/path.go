package declared

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keybrake/keybrake/vendors"
)

// A path names values in a JSON document: segments joined by dots. A
// segment is an object key, an array index ("data.0.id"), or "*" for every
// element of an array ("messages.*.content"). Alternatives are joined by
// "|": the first alternative that names at least one non-null value is used
// ("max_completion_tokens|max_tokens").
//
// In a form-encoded body (application/x-www-form-urlencoded) a path is a
// form key, and its values are the key's values.

// validatePath checks a path's syntax.
func validatePath(p string) error {
	if strings.TrimSpace(p) == "" {
		return fmt.Errorf("empty path")
	}
	for _, alt := range strings.Split(p, "|") {
		if alt == "" {
			return fmt.Errorf("path %q: empty alternative", p)
		}
		for _, seg := range strings.Split(alt, ".") {
			if seg == "" {
				return fmt.Errorf("path %q: empty segment", p)
			}
			if strings.ContainsAny(seg, " \t\r\n") {
				return fmt.Errorf("path %q: segment %q has white space", p, seg)
			}
		}
	}
	return nil
}

// body is a parsed request or response body.
type body struct {
	json           any        // decoded JSON (numbers as json.Number), when isJSON
	form           url.Values // when isForm
	isJSON, isForm bool
}

// parseBody parses a request body by its Content-Type, one way only (see
// vendors/reading.go): JSON (application/json or any +json type; also a
// body that looks like JSON when no Content-Type is given), with no key
// given twice at any depth; or a form, which must not be JSON and must not
// give any of fields twice. An empty body parses as nothing.
func parseBody(mt string, raw []byte, fields []string) (*body, *vendors.Error) {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0 && mt == "application/x-www-form-urlencoded":
		return &body{form: url.Values{}, isForm: true}, nil
	case len(trimmed) == 0:
		return &body{}, nil
	}
	switch {
	case mt == "application/x-www-form-urlencoded":
		form, bad := vendors.ReadForm(raw, fields)
		if bad != nil {
			return nil, bad
		}
		return &body{form: form, isForm: true}, nil
	case vendors.IsJSONType(mt) || (mt == "" && (trimmed[0] == '{' || trimmed[0] == '[')):
		v, err := vendors.DecodeJSON(trimmed)
		if err != nil {
			return nil, vendors.Ambiguous("Keybrake cannot price this request: " + err.Error() + ".")
		}
		return &body{json: v, isJSON: true}, nil
	default:
		return nil, vendors.Ambiguous(fmt.Sprintf("Keybrake cannot price this request: the body's content type %q cannot be priced.", mt))
	}
}

// decodeJSON decodes one JSON value keeping numbers exact: a vendor's
// answer, read as leniently as its SDK would.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

// named reports how many of a path's alternatives name a value.
func (b *body) named(path string) int {
	n := 0
	for _, alt := range strings.Split(path, "|") {
		if len(b.lookup(alt)) > 0 {
			n++
		}
	}
	return n
}

// lookup returns the values a path names (null values left out), using the
// first alternative that names any.
func (b *body) lookup(path string) []any {
	for _, alt := range strings.Split(path, "|") {
		var out []any
		switch {
		case b.isJSON:
			out = lookupJSON(b.json, strings.Split(alt, "."), nil)
		case b.isForm:
			for _, v := range b.form[alt] {
				out = append(out, v)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

func lookupJSON(v any, segs []string, out []any) []any {
	if v == nil {
		return out
	}
	if len(segs) == 0 {
		return append(out, v)
	}
	seg, rest := segs[0], segs[1:]
	switch t := v.(type) {
	case map[string]any:
		if child, ok := t[seg]; ok {
			return lookupJSON(child, rest, out)
		}
	case []any:
		if seg == "*" {
			for _, el := range t {
				out = lookupJSON(el, rest, out)
			}
			return out
		}
		if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(t) {
			return lookupJSON(t[i], rest, out)
		}
	}
	return out
}

// countOf is how many items a value holds: an array's length, 1 for any
// other non-null value.
func countOf(v any) int64 {
	switch t := v.(type) {
	case nil:
		return 0
	case []any:
		return int64(len(t))
	default:
		return 1
	}
}

// charsOf is the number of characters (Unicode code points) in every string
// inside a value; object keys are not counted.
func charsOf(v any) int64 {
	switch t := v.(type) {
	case string:
		return int64(utf8.RuneCountInString(t))
	case []any:
		var n int64
		for _, el := range t {
			n += charsOf(el)
		}
		return n
	case map[string]any:
		var n int64
		for _, el := range t {
			n += charsOf(el)
		}
		return n
	default:
		return 0
	}
}

// scalarString renders a scalar JSON value as text (for transaction ids and
// numbers); ok is false for arrays, objects and null.
func scalarString(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool:
		return strconv.FormatBool(t), true
	default:
		return "", false
	}
}
