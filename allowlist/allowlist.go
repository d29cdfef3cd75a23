// Package allowlist is the one grammar of a vault key's allowed endpoints,
// used by the key API when a key or a token policy is written, by the gate
// when a call is matched, and by declared vendors' endpoint rules. There is
// no second parser: an entry the key API accepts is an entry the gate
// matches, and one it refuses is refused with the reason.
//
// An entry is "METHOD /path":
//
//   - METHOD is one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, in
//     upper case;
//   - the path starts with "/" and is one or more segments of RFC 3986
//     path characters other than "%" (no percent-encoding, query or
//     fragment);
//   - no segment is empty (so no "//" and no trailing "/"), "." or "..";
//   - "*" is only ever a whole segment, where it stands for exactly one
//     segment of the request path.
//
// The gate matches only canonical request paths (vendors.CanonicalPath),
// which have no empty segment either: an entry with a trailing slash could
// never match, so it is refused rather than stored as a silent no-op.
package allowlist

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Bounds on what a key may carry; the key API enforces them.
const (
	// MaxEntries is the most entries one allowlist may have.
	MaxEntries = 100
	// MaxEntryLength is the longest entry accepted, in bytes.
	MaxEntryLength = 512
)

// Pattern is one parsed entry.
type Pattern struct {
	entry    string // normalised: one space between method and path
	method   string
	segments []string
}

// String is the entry, normalised.
func (p Pattern) String() string { return p.entry }

// ParsePattern parses one entry. Surrounding and repeated spaces are
// allowed and dropped.
func ParsePattern(entry string) (Pattern, error) {
	if len(entry) > MaxEntryLength {
		return Pattern{}, fmt.Errorf("must be at most %d characters", MaxEntryLength)
	}
	fields := strings.Fields(entry)
	if len(fields) != 2 {
		return Pattern{}, errors.New(`must be "METHOD /path", e.g. "POST /v1/payment_intents"`)
	}
	method, path := fields[0], fields[1]
	if err := CheckMethod(method); err != nil {
		return Pattern{}, err
	}
	segments, err := parsePath(path)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{entry: method + " " + path, method: method, segments: segments}, nil
}

// Normalize checks one entry and returns it normalised.
func Normalize(entry string) (string, error) {
	p, err := ParsePattern(entry)
	if err != nil {
		return "", err
	}
	return p.entry, nil
}

// CheckPath checks that path is a valid pattern path ("*" segments
// allowed).
func CheckPath(path string) error {
	_, err := parsePath(path)
	return err
}

// CheckMethod checks that m is a method an entry may name.
func CheckMethod(m string) error {
	if validMethod(m) {
		return nil
	}
	if validMethod(strings.ToUpper(m)) {
		return fmt.Errorf("method %q must be uppercase", m)
	}
	return fmt.Errorf("method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", m)
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

func parsePath(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("path %q must start with /", path)
	}
	segments := strings.Split(path[1:], "/")
	for i, seg := range segments {
		switch {
		case seg == "" && i == len(segments)-1 && len(segments) > 1:
			return nil, fmt.Errorf("path %q ends with /: no request path does (Keybrake refuses empty segments); "+
				"drop the trailing / or use /* for one more segment", path)
		case seg == "":
			return nil, fmt.Errorf("path %q has an empty segment", path)
		case seg == "." || seg == "..":
			return nil, fmt.Errorf("path %q has a %q segment", path, seg)
		case strings.Contains(seg, "*") && seg != "*":
			return nil, fmt.Errorf("path %q: * must be a whole path segment", path)
		}
		for j := 0; j < len(seg); j++ {
			if !isPathChar(seg[j]) {
				return nil, fmt.Errorf("path %q: character %q is not allowed", path, seg[j])
			}
		}
	}
	return segments, nil
}

// isPathChar reports RFC 3986 pchar characters, without "%", plus "*".
func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0
}
