package vendors

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

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
