package twilio

import (
	"net/http"
	"strings"

	"github.com/keybrake/keybrake/vendors"
)

// errNoAccount refuses a path outside /2010-04-01/Accounts/{sid}/….
func errNoAccount() *vendors.Error {
	return &vendors.Error{Status: http.StatusNotFound, Code: "keybrake_bad_path",
		Message: "Keybrake forwards only /" + APIVersion + "/Accounts/{AccountSid}/… paths to Twilio."}
}

// isAccounts reports whether a path segment is "Accounts". Twilio may not
// route other cases, but classifying them the same costs nothing.
func isAccounts(seg string) bool { return strings.EqualFold(seg, "Accounts") }

// accountPath splits /2010-04-01/Accounts/{sid}/rest… into its rest. ok is
// false when the path has no account segment.
func accountPath(p string) (rest []string, ok bool) {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) < 3 || segs[0] != APIVersion || !isAccounts(segs[1]) ||
		segs[2] == "" || strings.HasPrefix(segs[2], ".") {
		return nil, false
	}
	return segs[3:], true
}

// accountsList reports whether the path is the accounts list
// (/2010-04-01/Accounts, .json, .xml, /): creating a sub-account there mints
// credentials and listing returns every sub-account's auth token.
func accountsList(p string) bool {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) < 2 || segs[0] != APIVersion {
		return false
	}
	return isAccounts(resourceName(segs[1])) && (len(segs) == 2 || (len(segs) == 3 && segs[2] == ""))
}

// resourceName is a path segment without its representation extension:
// Twilio answers Messages.json, Messages.xml and Messages alike, so they
// are one resource. Twilio resource names and SIDs contain no dot.
func resourceName(seg string) string {
	if i := strings.IndexByte(seg, '.'); i >= 0 {
		return seg[:i]
	}
	return seg
}

// resourceNames returns the rest of an account path as resource names: no
// extensions, no empty segments (a trailing or doubled slash).
func resourceNames(rest []string) []string {
	out := make([]string, 0, len(rest))
	for _, s := range rest {
		if s = resourceName(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// replaceAccount replaces the account segment of a path that has one,
// keeping its extension (/2010-04-01/Accounts/AC….json).
func replaceAccount(p, sid string) (string, bool) {
	lead := strings.HasPrefix(p, "/")
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) < 3 || segs[0] != APIVersion || !isAccounts(segs[1]) || segs[2] == "" {
		return "", false
	}
	ext := ""
	if i := strings.IndexByte(segs[2], '.'); i >= 0 && len(segs) == 3 {
		ext = segs[2][i:]
	}
	segs[2] = sid + ext
	out := strings.Join(segs, "/")
	if lead {
		out = "/" + out
	}
	return out, true
}

func (v *Vendor) rewritePath(r *http.Request) error {
	if _, ok := accountPath(r.URL.Path); !ok {
		return errNoAccount()
	}
	p, ok := replaceAccount(r.URL.Path, v.accountSID)
	if !ok {
		return errNoAccount()
	}
	r.URL.Path = p
	if r.URL.RawPath != "" {
		raw, ok := replaceAccount(r.URL.RawPath, v.accountSID)
		if !ok {
			return errNoAccount()
		}
		r.URL.RawPath = raw
	}
	if r.RequestURI != "" {
		r.RequestURI = r.URL.RequestURI()
	}
	return nil
}

// RecordedPath implements vendors.PathRecorder: the path as logged and
// audited, with the account segment (where twilio-go puts the Basic user,
// which may be the vault key) replaced by the real account SID, as
// Authorize sends it. A path with no account position is recorded as it
// is (it is refused before forwarding).
func (v *Vendor) RecordedPath(path string) string {
	if p, ok := replaceAccount(path, v.accountSID); ok {
		return p
	}
	return path
}
