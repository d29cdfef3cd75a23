package vendors

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/allowlist"
)

// FuzzAllowlist: whatever path a client sends, the allowlist either refuses
// it or matches an entry whose every literal segment equals the path's.
func FuzzAllowlist(f *testing.F) {
	for _, p := range []string{"/v1/customers/cus_1", "/v1/customers/..%2fpayouts", "/v1//x", "/v1/customers/%2e%2e", "/v1/customers/a/b"} {
		f.Add("GET", p)
	}
	list, err := allowlist.Parse([]string{"GET /v1/customers/*", "POST /v1/payment_intents"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, rawPath string) {
		r, err := http.NewRequest(method, "http://x"+rawPath, nil)
		if err != nil || r.URL.Host != "x" {
			return
		}
		path, err := CanonicalPath(r)
		if err != nil {
			return
		}
		entry, ok := list.Match(r.Method, path)
		if !ok {
			return
		}
		switch entry {
		case "GET /v1/customers/*":
			segs := strings.Split(path, "/")
			if r.Method != "GET" || len(segs) != 4 || segs[1] != "v1" || segs[2] != "customers" || segs[3] == "" {
				t.Fatalf("%s %q matched %q", r.Method, path, entry)
			}
		case "POST /v1/payment_intents":
			if r.Method != "POST" || path != "/v1/payment_intents" {
				t.Fatalf("%s %q matched %q", r.Method, path, entry)
			}
		}
	})
}
