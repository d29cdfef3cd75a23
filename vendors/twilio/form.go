package twilio

import (
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/keybrake/keybrake/vendors"
)

// badRequest is a 400 refusal of a request Keybrake cannot price with
// certainty.
func badRequest(msg string) *vendors.Error {
	return &vendors.Error{Status: http.StatusBadRequest, Code: "keybrake_bad_request", Message: msg}
}

// readForm parses the form body of a POST Keybrake prices or lets through
// free. Twilio reads form parameters and, for most, only one value: a
// second To or Body would be sent but not counted, so a parameter given
// twice (or twice in different letter case) is refused unless multi names
// it. Parameters in the query string are refused too: only the body is
// read. The form returned has its names in lower case (Twilio's names are
// looked up that way), so a parameter in another letter case is never
// missed.
func readForm(r *http.Request, body []byte, multi map[string]bool) (url.Values, *vendors.Error) {
	if r.URL.RawQuery != "" {
		return nil, badRequest("Keybrake reads Twilio parameters from the form body only; move them out of the query string.")
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); mt != "application/x-www-form-urlencoded" && (ct != "" || len(body) > 0) {
		return nil, badRequest("Keybrake prices Twilio requests sent as application/x-www-form-urlencoded only.")
	}
	if vendors.LooksLikeJSON(body) {
		return nil, vendors.Ambiguous("Twilio reads form encoding; this body is JSON. Send it as application/x-www-form-urlencoded.")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("Keybrake cannot read this request's form body.")
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	folded := map[string]string{}
	out := make(url.Values, len(form))
	for _, k := range keys {
		f := strings.ToLower(k)
		if len(form[k]) > 1 && !multi[f] {
			return nil, badRequest("Parameter " + quoteParam(k) + " is given more than once; Twilio reads only one of them.")
		}
		if other, dup := folded[f]; dup {
			return nil, badRequest("Parameters " + quoteParam(other) + " and " + quoteParam(k) + " differ only in letter case; send one.")
		}
		folded[f] = k
		out[f] = form[k]
	}
	return out, nil
}

// quoteParam shows a parameter name in a refusal, bounded.
func quoteParam(k string) string {
	if len(k) > 40 {
		k = k[:40] + "…"
	}
	return "'" + k + "'"
}

// onlyParams reports the first parameter of form not in allowed (lower
// case), or "" when there is none.
func onlyParams(form url.Values, allowed ...string) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return k
		}
	}
	return ""
}

// isOff reports whether a parameter is absent or set to one of the values
// that turn its feature off (compared without letter case).
func isOff(form url.Values, key string, off ...string) bool {
	vs, ok := form[key]
	if !ok {
		return true
	}
	v := strings.TrimSpace(vs[0])
	if v == "" {
		return true
	}
	for _, o := range off {
		if strings.EqualFold(v, o) {
			return true
		}
	}
	return false
}
