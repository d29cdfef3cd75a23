package declared

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
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

// parseBody parses a request body by its Content-Type: JSON (application/json
// or any +json type; also a body that looks like JSON when no Content-Type
// is given), or a form. An empty body parses as nothing.
func parseBody(contentType string, raw []byte) (*body, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return &body{}, nil
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, fmt.Errorf("the form body cannot be parsed")
		}
		return &body{form: form, isForm: true}, nil
	case mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		(mt == "" && (trimmed[0] == '{' || trimmed[0] == '[')):
		v, err := decodeJSON(trimmed)
		if err != nil {
			return nil, fmt.Errorf("the JSON body cannot be parsed")
		}
		return &body{json: v, isJSON: true}, nil
	default:
		return nil, fmt.Errorf("the body's content type %q cannot be priced", mt)
	}
}

// decodeJSON decodes one JSON value keeping numbers exact.
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
