package allowlist

import (
	"fmt"
	"strings"
)

// List is a compiled allowlist. An empty List allows nothing: default deny.
type List []Pattern

// Parse compiles entries, failing on the first invalid one (named by its
// index). It is for input: a key being issued, a policy, a config.
func Parse(entries []string) (List, error) {
	list := make(List, 0, len(entries))
	for i, e := range entries {
		p, err := ParsePattern(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%q): %w", i, e, err)
		}
		list = append(list, p)
	}
	return list, nil
}

// Compile compiles a stored allowlist for matching. An entry that does not
// parse (one stored before this grammar) matches nothing, and is returned
// among the errors; the valid entries still match. Denying one stale entry
// is safe; denying the whole key for it would not be what its issuer asked.
func Compile(entries []string) (List, []error) {
	list := make(List, 0, len(entries))
	var errs []error
	for _, e := range entries {
		p, err := ParsePattern(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %q: %w", e, err))
			continue
		}
		list = append(list, p)
	}
	return list, errs
}

// Match returns the first entry that allows method and path. path must
// already be canonical (vendors.CanonicalPath): a path that is not, or
// that has an empty segment, matches nothing.
func (l List) Match(method, path string) (string, bool) {
	if len(l) == 0 || !strings.HasPrefix(path, "/") {
		return "", false
	}
	rest := path[1:]
	for _, p := range l {
		if p.method == method && p.matchPath(rest) {
			return p.entry, true
		}
	}
	return "", false
}

// matchPath matches the path after its leading "/" segment by segment,
// without allocating: a call is matched on every request.
func (p Pattern) matchPath(rest string) bool {
	for i, want := range p.segments {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "" || (want != "*" && want != seg) {
			return false
		}
		last := i == len(p.segments)-1
		if last != !more {
			return false
		}
		rest = tail
	}
	return true
}

// Covers reports whether every call entry allows is also allowed by l: some
// pattern of l has entry's method and as many segments, each either "*" or
// equal to entry's (so a "*" in entry is covered only by a "*"). An issuing
// policy and a narrowing PATCH use it to keep an allowlist inside another,
// pattern by pattern. An entry that is not a valid pattern is covered by
// nothing.
func (l List) Covers(entry string) bool {
	e, err := ParsePattern(entry)
	if err != nil {
		return false
	}
	// entry's path read as a request path: its "*" segments are literal,
	// so they match only a "*" of l.
	rest := e.entry[len(e.method)+2:]
	for _, p := range l {
		if p.method == e.method && p.matchPath(rest) {
			return true
		}
	}
	return false
}

// MatchPath reports whether path (canonical) matches the path pattern
// pattern ("/orders/*"), whatever the method; an invalid pattern matches
// nothing.
func MatchPath(pattern, path string) bool {
	segments, err := parsePath(pattern)
	if err != nil || !strings.HasPrefix(path, "/") {
		return false
	}
	return Pattern{segments: segments}.matchPath(path[1:])
}
