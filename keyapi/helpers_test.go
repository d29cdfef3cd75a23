package keyapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const testToken = "tok_4f9c1e7a2b"

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// env is one Handler under test with its fake store, logs and clock.
type env struct {
	t     *testing.T
	h     *Handler
	store *fakeStore
	logs  *observer.ObservedLogs
	now   time.Time
	// revoked collects OnRevoke calls.
	revoked []string
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	e := &env{t: t, store: newFakeStore(), logs: logs, now: testNow}
	cfg := Config{
		Store:    e.store,
		Tokens:   []string{testToken},
		Vendors:  []string{"stripe", "twilio", "resend"},
		Now:      func() time.Time { return e.now },
		OnRevoke: func(id string) { e.revoked = append(e.revoked, id) },
		Logger:   zap.New(core),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.h = h
	return e
}

// do sends an authenticated request.
func (e *env) do(method, target, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.doAuth(method, target, body, "Bearer "+testToken)
}

// doAuth sends a request with the given Authorization header ("" for none).
func (e *env) doAuth(method, target, body, auth string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// createKey issues a key and returns the decoded response.
func (e *env) createKey(body string) map[string]any {
	e.t.Helper()
	rec := e.do(http.MethodPost, "/vault/keys", body)
	if rec.Code != http.StatusCreated {
		e.t.Fatalf("create key: status %d, body %s", rec.Code, rec.Body)
	}
	return decodeMap(e.t, rec)
}

// logText renders every log entry, message and fields, as one string.
func (e *env) logText() string {
	var b strings.Builder
	for _, ent := range e.logs.All() {
		fmt.Fprintf(&b, "%s %s %v\n", ent.Level, ent.Message, ent.ContextMap())
	}
	return b.String()
}

func decodeMap(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	return m
}

// apiErr decodes an error response, checking its shape.
func apiErr(t *testing.T, rec *httptest.ResponseRecorder) errorDetail {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q", ct)
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	var b errorBody
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error without code or message: %+v", b.Error)
	}
	return b.Error
}

// wantError checks status, code and field of an error response.
func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code, field string) errorDetail {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	d := apiErr(t, rec)
	if d.Code != code || d.Field != field {
		t.Fatalf("error %+v, want code %q field %q", d, code, field)
	}
	return d
}

const validKeyBody = `{"vendor":"stripe","daily_usd_cap":50,"total_usd_cap":200,` +
	`"allowed_endpoints":["POST /v1/payment_intents","GET /v1/customers/*"],` +
	`"expires_in":"2h","agent_run_label":"windmill/0193abc","metadata":{"flow":"refunds","n":1}}`

func newRequest(method, target, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	return req
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
