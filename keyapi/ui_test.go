package keyapi

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestUIServedWithoutToken(t *testing.T) {
	e := newEnv(t)
	for path, wantType := range map[string]string{
		"/vault/ui":         "text/html",
		"/vault/ui/":        "text/html",
		"/vault/ui/app.js":  "text/javascript",
		"/vault/ui/app.css": "text/css",
		// The page's icon: no /favicon.ico request to the site root (404).
		"/vault/ui/favicon.svg": "image/svg+xml",
	} {
		rec := e.doAuth(http.MethodGet, path, "", "")
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s without a token: status %d: %s", path, rec.Code, rec.Body)
		}
		if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, wantType) {
			t.Errorf("GET %s: Content-Type %q; want %s", path, got, wantType)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline code", path, csp)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", path, rec.Header())
		}
	}
}

// TestUINoInlineCode checks the page itself obeys its CSP: every script is
// a separate file, no inline handlers or style attributes.
func TestUINoInlineCode(t *testing.T) {
	page, err := uiFiles.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(m, `src="/vault/ui/`) {
			t.Errorf("inline script tag %s", m)
		}
	}
	if regexp.MustCompile(`<script[^>]*>[^<]+</script>`).MatchString(html) {
		t.Error("a script tag has inline code")
	}
	if regexp.MustCompile(`\son[a-z]+=|\sstyle=`).MatchString(html) {
		t.Error("inline event handler or style attribute in index.html")
	}
	js, _ := uiFiles.ReadFile("ui/app.js")
	if strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), "eval(") {
		t.Error("app.js parses strings as HTML or code")
	}
}

func TestUIErrors(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.doAuth(http.MethodPost, "/vault/ui", "", ""), http.StatusMethodNotAllowed, "method_not_allowed", "")
	wantError(t, e.doAuth(http.MethodGet, "/vault/ui/secret.txt", "", ""), http.StatusNotFound, codeNotFound, "")
	// /vault/uix is not the dashboard: it needs a token like the API.
	wantError(t, e.doAuth(http.MethodGet, "/vault/uix", "", ""), http.StatusUnauthorized, "unauthorized", "")
	rec := e.doAuth(http.MethodHead, "/vault/ui/app.js", "", "")
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestWhoami(t *testing.T) {
	e := newEnv(t)
	rec := e.do(http.MethodGet, "/vault/whoami", "")
	if rec.Code != http.StatusOK || rec.Body.String() != `{"role":"admin","token_id":null,"policy":null}`+"\n" {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	wantError(t, e.doAuth(http.MethodGet, "/vault/whoami", "", ""), http.StatusUnauthorized, "unauthorized", "")
	wantError(t, e.do(http.MethodPost, "/vault/whoami", "{}"), http.StatusMethodNotAllowed, "method_not_allowed", "")
}
