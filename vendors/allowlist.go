package vendors

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Allowlist is a key's list of endpoints, each "METHOD /path" where a "*"
// segment matches exactly one path segment. An empty Allowlist allows
// nothing: default deny.
type Allowlist []endpointPattern

type endpointPattern struct {
	entry    string // as the key was issued with it
	method   string
	segments []string
}

// ParseAllowlist parses a key's allowed_endpoints.
func ParseAllowlist(entries []string) (Allowlist, error) {
	list := make(Allowlist, 0, len(entries))
	for _, e := range entries {
		p, err := parseEndpoint(e)
		if err != nil {
			return nil, err
		}
		list = append(list, p)
	}
	return list, nil
}

// patternFor is the pattern of method and path, or one that matches
// nothing when path is not a valid pattern.
func patternFor(method, path string) endpointPattern {
	p, err := parseEndpoint(method + " " + path)
	if err != nil {
		return endpointPattern{method: "\x00"}
	}
	return p
}

// ValidateEndpoint checks one allowlist entry.
func ValidateEndpoint(entry string) error {
	_, err := parseEndpoint(entry)
	return err
}

func parseEndpoint(e string) (endpointPattern, error) {
	method, path, ok := strings.Cut(strings.TrimSpace(e), " ")
	path = strings.TrimSpace(path)
	if !ok || method == "" || path == "" {
		return endpointPattern{}, fmt.Errorf("endpoint %q: want \"METHOD /path\"", e)
	}
	if method != strings.ToUpper(method) || !validMethod(method) {
		return endpointPattern{}, fmt.Errorf("endpoint %q: unknown method %q", e, method)
	}
	if !strings.HasPrefix(path, "/") {
		return endpointPattern{}, fmt.Errorf("endpoint %q: path must start with /", e)
	}
	segs := strings.Split(path[1:], "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return endpointPattern{}, fmt.Errorf("endpoint %q: empty, . or .. segment", e)
		}
		if strings.Contains(s, "*") && s != "*" {
			return endpointPattern{}, fmt.Errorf("endpoint %q: * must be a whole segment", e)
		}
		if strings.ContainsAny(s, "%?#\\ ") {
			return endpointPattern{}, fmt.Errorf("endpoint %q: path has a character not allowed in a pattern", e)
		}
	}
	return endpointPattern{entry: method + " " + path, method: method, segments: segs}, nil
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// Match returns the first entry that allows method and path. path must
// already be canonical (see CanonicalPath).
func (a Allowlist) Match(method, path string) (string, bool) {
	if !strings.HasPrefix(path, "/") {
		return "", false
	}
	segs := strings.Split(path[1:], "/")
	for _, p := range a {
		if p.method != method || len(p.segments) != len(segs) {
			continue
		}
		matched := true
		for i, s := range p.segments {
			if s != "*" && s != segs[i] {
				matched = false
				break
			}
		}
		if matched {
			return p.entry, true
		}
	}
	return "", false
}

// CanonicalPath returns the request path the allowlist is matched against,
// refusing any path that could mean something else upstream than it seems
// to here: encoded slashes, backslashes or dots, dot segments, empty
// segments. Keybrake does not normalise such paths; it refuses them, so a
// pattern can never be bypassed by an alternative spelling.
func CanonicalPath(r *http.Request) (string, error) {
	raw := r.URL.EscapedPath()
	lower := strings.ToLower(raw)
	for _, bad := range []string{"%2f", "%5c", "%2e", "%00", "\\"} {
		if strings.Contains(lower, bad) {
			return "", fmt.Errorf("path contains an encoded separator or dot")
		}
	}
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path must start with /")
	}
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("path is not valid UTF-8")
	}
	for _, s := range strings.Split(p[1:], "/") {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("path has an empty, . or .. segment")
		}
		for _, c := range s {
			if c < 0x20 || c == 0x7f {
				return "", fmt.Errorf("path has a control character")
			}
		}
	}
	return p, nil
}

// Covers reports whether every call entry allows is also allowed by a: some
// pattern of a has entry's method and as many segments, each either "*" or
// equal to entry's (so a "*" in entry is covered only by a "*"). An issuing
// policy uses it to keep a key's allowlist inside its own, pattern by
// pattern. An entry that is not a valid pattern is covered by nothing.
func (a Allowlist) Covers(entry string) bool {
	e, err := parseEndpoint(entry)
	if err != nil {
		return false
	}
	for _, p := range a {
		if p.method != e.method || len(p.segments) != len(e.segments) {
			continue
		}
		inside := true
		for i, s := range p.segments {
			if s != "*" && s != e.segments[i] {
				inside = false
				break
			}
		}
		if inside {
			return true
		}
	}
	return false
}
