package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// writeCaddyfile writes a Caddyfile for one test: a site on
// KEYBRAKE_LISTEN with the key API, the given keybrake vendor blocks and
// site routes. The node's environment (startNode) fills in the rest.
func writeCaddyfile(t *testing.T, vendors, routes string) string {
	t.Helper()
	text := fmt.Sprintf(`{
	admin {$KEYBRAKE_ADMIN}
	keybrake {
		ledger {env.KEYBRAKE_LEDGER}
		api_token {env.KEYBRAKE_API_TOKEN}
%s
	}
}

{$KEYBRAKE_LISTEN} {
	handle /vault/* {
		keybrake_api
	}
%s
	handle {
		respond "not found" 404
	}
}
`, vendors, routes)
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newFakeVendor is a local server standing where a vendor's API is: serve
// answers like the real API, and every request is recorded first, so a
// test can say exactly what reached the vendor.
func newFakeVendor(t *testing.T, serve http.HandlerFunc) *recorder {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec.mu.Lock()
		rec.got = append(rec.got, recordedRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
		rec.mu.Unlock()
		serve(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// sdkTransport is an SDK's HTTP transport that counts the requests the SDK
// sends (so a test sees it did not retry) and keeps the last response's
// status and headers (which the SDKs' errors do not expose).
type sdkTransport struct {
	mu         sync.Mutex
	sent       int
	lastStatus int
	lastHeader http.Header
}

func (s *sdkTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		s.lastStatus, s.lastHeader = resp.StatusCode, resp.Header.Clone()
		s.mu.Unlock()
	}
	return resp, err
}

func (s *sdkTransport) client() *http.Client {
	return &http.Client{Transport: s, Timeout: 30 * time.Second}
}

// count returns how many requests were sent so far.
func (s *sdkTransport) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

// last returns the last response's status and headers.
func (s *sdkTransport) last() (int, http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastStatus, s.lastHeader
}

// waitAudit polls the audit log of a run until done says so, for at most
// timeout, and returns the last rows read.
func waitAudit(t *testing.T, n *node, label string, timeout time.Duration, done func([]auditCall) bool) ([]auditCall, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		calls := audit(t, n, label)
		if done(calls) {
			return calls, true
		}
		if time.Now().After(deadline) {
			return calls, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// byOutcome groups audit rows by outcome.
// counted is how many calls audit records stand for: a refusal's record
// counts its key's refusals of the same outcome in its minute.
func counted(calls []auditCall) int64 {
	var n int64
	for _, c := range calls {
		n += int64(c.Count)
	}
	return n
}

func byOutcome(calls []auditCall) map[string][]auditCall {
	out := map[string][]auditCall{}
	for _, c := range calls {
		out[c.Outcome] = append(out[c.Outcome], c)
	}
	return out
}
