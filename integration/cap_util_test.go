package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
)

// serve sends one request to a handler in this process.
func serve(h http.Handler, method, path, body string, header http.Header) capResponse {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for name, vals := range header {
		r.Header[name] = vals
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return capResponse{status: w.Code, header: w.Header(), body: w.Body.String()}
}

// jsonField reads one top-level string field of a JSON object ("" if none).
func jsonField(body, name string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
