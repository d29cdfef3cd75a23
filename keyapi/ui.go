package keyapi

import (
	"embed"
	"net/http"
	"strings"
)

// UIPath is where the dashboard is served. The page and its assets load
// without a token; every data call the page makes sends the API token the
// person signed in with, as any other client would.
const UIPath = PathPrefix + "ui"

// uiFiles is the dashboard: plain HTML, CSS and JavaScript, no build step.
//
//go:embed ui/index.html ui/app.css ui/app.js ui/favicon.svg ui/approvals.js ui/approvals.css
var uiFiles embed.FS

// uiAssets maps a path under UIPath to its embedded file and type.
var uiAssets = map[string]struct{ file, contentType string }{
	"":         {"ui/index.html", "text/html; charset=utf-8"},
	"/":        {"ui/index.html", "text/html; charset=utf-8"},
	"/app.js":  {"ui/app.js", "text/javascript; charset=utf-8"},
	"/app.css": {"ui/app.css", "text/css; charset=utf-8"},
	// The page names its icon, so browsers do not ask the site root for
	// /favicon.ico (a 404 outside /vault/).
	"/favicon.svg": {"ui/favicon.svg", "image/svg+xml"},
	// Calls waiting for a person (issue 19).
	"/approvals.js":  {"ui/approvals.js", "text/javascript; charset=utf-8"},
	"/approvals.css": {"ui/approvals.css", "text/css; charset=utf-8"},
}

// uiCSP allows the page its own script, style and API only: no inline
// script or style, no other origin, no framing, no form posting anywhere.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// isUIPath reports whether the request is for the dashboard.
func isUIPath(p string) bool {
	return p == UIPath || strings.HasPrefix(p, UIPath+"/")
}

// serveUI answers the dashboard's page and assets with strict security
// headers. It never reads or needs the Authorization header.
func (h *Handler) serveUI(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", uiCSP)
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.writeError(w, r, methodNotAllowed(w, "GET, HEAD"))
		return
	}
	asset, ok := uiAssets[strings.TrimPrefix(r.URL.Path, UIPath)]
	if !ok {
		h.writeError(w, r, errNotFound("no such dashboard file"))
		return
	}
	body, err := uiFiles.ReadFile(asset.file)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	hdr.Set("Content-Type", asset.contentType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
