package integration

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// recordedRequest is one request the vendor received.
type recordedRequest struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   string
}

// recorder stands where the vendor is: it records every request it gets and
// passes it on to stripe-mock, so tests can say exactly what reached the
// vendor and with which credentials.
type recorder struct {
	URL string
	mu  sync.Mutex
	got []recordedRequest
	// responses holds every response body sent back, to check for leaks.
	responses []string
}

// newRecorder is a fake vendor (newFakeVendor) that passes every request
// on to upstream (stripe-mock) and keeps the response bodies too.
func newRecorder(t *testing.T, upstream string) *recorder {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	var rec *recorder
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		rec.mu.Lock()
		rec.responses = append(rec.responses, string(b))
		rec.mu.Unlock()
		return nil
	}
	rec = newFakeVendor(t, proxy.ServeHTTP)
	return rec
}

// requests returns what was received so far.
func (r *recorder) requests() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedRequest(nil), r.got...)
}

// count counts received requests with this method and path.
func (r *recorder) count(method, path string) int {
	n := 0
	for _, q := range r.requests() {
		if q.Method == method && q.Path == path {
			n++
		}
	}
	return n
}

// total counts every received request.
func (r *recorder) total() int { return len(r.requests()) }

// anyContains reports whether any received request carries s anywhere.
func (r *recorder) anyContains(s string) bool {
	for _, q := range r.requests() {
		if strings.Contains(q.Path, s) || strings.Contains(q.Query, s) || strings.Contains(q.Body, s) {
			return true
		}
		for _, vs := range q.Header {
			for _, v := range vs {
				if strings.Contains(v, s) {
					return true
				}
			}
		}
	}
	return false
}
