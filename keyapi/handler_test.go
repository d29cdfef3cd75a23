package keyapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func TestNewChecksConfig(t *testing.T) {
	store := newFakeStore()
	bad := []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{}},
		{"negative max TTL", Config{Store: store, MaxTTL: -time.Second}},
		{"negative default TTL", Config{Store: store, DefaultTTL: -time.Second}},
		{"default over max", Config{Store: store, MaxTTL: time.Hour, DefaultTTL: 2 * time.Hour}},
		{"empty vendor", Config{Store: store, Vendors: []string{"stripe", ""}}},
	}
	for _, tc := range bad {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}

	h, err := New(Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if h.maxTTL != 24*time.Hour || h.defaultTTL != time.Hour {
		t.Errorf("defaults: max %s default %s", h.maxTTL, h.defaultTTL)
	}
	h, err = New(Config{Store: store, MaxTTL: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if h.defaultTTL != 30*time.Minute {
		t.Errorf("default TTL with a 30m max: %s", h.defaultTTL)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Tokens = []string{"other-token", testToken} })
	cases := []struct {
		name, auth string
		want       int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"prefix of token", "Bearer " + testToken[:5], http.StatusUnauthorized},
		{"token plus suffix", "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
		{"lowercase scheme", "bearer " + testToken, http.StatusOK},
		{"second configured token", "Bearer other-token", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.doAuth(http.MethodGet, "/vault/keys", "", tc.auth)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == http.StatusUnauthorized {
				d := wantError(t, rec, http.StatusUnauthorized, "unauthorized", "")
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
				}
				if strings.Contains(d.Message, testToken) {
					t.Errorf("message echoes the token: %q", d.Message)
				}
			}
		})
	}

	// Authentication comes before routing and body parsing.
	for _, target := range []string{"/vault/nowhere", "/vault/keys/vkX", "/vault/audit"} {
		rec := e.doAuth(http.MethodPost, target, strings.Repeat("x", maxBodyBytes+10), "Bearer wrong")
		wantError(t, rec, http.StatusUnauthorized, "unauthorized", "")
	}
	if strings.Contains(e.logText(), testToken) || strings.Contains(e.logText(), "other-token") {
		t.Errorf("a token was logged:\n%s", e.logText())
	}
}

func TestNoTokenConfigured(t *testing.T) {
	for _, tokens := range [][]string{nil, {}, {""}, {"  "}} {
		e := newEnv(t, func(c *Config) { c.Tokens = tokens })
		for _, auth := range []string{"", "Bearer ", "Bearer anything", "Bearer " + testToken} {
			rec := e.doAuth(http.MethodGet, "/vault/keys", "", auth)
			d := wantError(t, rec, http.StatusUnauthorized, "api_token_not_configured", "")
			if !strings.Contains(d.Message, "no API token is configured") {
				t.Errorf("message %q", d.Message)
			}
		}
	}
}

func TestRoutingNotFound(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{
		"/vault/", "/vault/nope", "/vault/keys/", "/vault/keys/vkA/extra", "/vault/keysx",
		"/vault/audit/x", "/vault/summary/", "/other", "/vault", "/vault/keys/vk%2Fx",
	} {
		rec := e.do(http.MethodGet, target, "")
		wantError(t, rec, http.StatusNotFound, "not_found", "")
	}
}

func TestRoutingMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ method, target, allow string }{
		{http.MethodPut, "/vault/keys", "GET, POST, DELETE"},
		{http.MethodPost, "/vault/keys/vkABC", "GET, PATCH, DELETE"},
		{http.MethodPut, "/vault/keys/vkABC", "GET, PATCH, DELETE"},
		{http.MethodPut, "/vault/tokens", "GET, POST"},
		{http.MethodPost, "/vault/tokens/tkABC", "GET, DELETE"},
		{http.MethodPost, "/vault/audit", "GET"},
		{http.MethodHead, "/vault/audit", "GET"},
		{http.MethodDelete, "/vault/summary", "GET"},
	}
	for _, tc := range cases {
		rec := e.do(tc.method, tc.target, "")
		if tc.method == http.MethodHead {
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d", tc.method, tc.target, rec.Code)
			}
		} else {
			wantError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed", "")
		}
		if got := rec.Header().Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.target, got, tc.allow)
		}
	}
}

func TestCommonHeaders(t *testing.T) {
	e := newEnv(t)
	for _, rec := range []interface{ Header() http.Header }{
		e.do(http.MethodPost, "/vault/keys", validKeyBody),
		e.do(http.MethodGet, "/vault/keys", ""),
		e.doAuth(http.MethodGet, "/vault/keys", "", ""),
	} {
		if got := rec.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q", got)
		}
	}
}

// every request that reaches the store, for the store-failure tests.
var storeRequests = []struct{ method, target, body string }{
	{http.MethodPost, "/vault/keys", validKeyBody},
	{http.MethodGet, "/vault/keys", ""},
	{http.MethodGet, "/vault/keys/vkAAAAAAAAAAAAAAAAAAAAAA", ""},
	{http.MethodDelete, "/vault/keys/vkAAAAAAAAAAAAAAAAAAAAAA", ""},
	{http.MethodGet, "/vault/audit", ""},
	{http.MethodGet, "/vault/audit?format=csv", ""},
	{http.MethodGet, "/vault/summary?agent_run_label=run1", ""},
}

func TestLedgerUnavailable(t *testing.T) {
	e := newEnv(t)
	e.store.setErr(fmt.Errorf("postgres: dial tcp 10.0.0.7:5432: connection refused: %w", ledger.ErrUnavailable))
	for _, r := range storeRequests {
		rec := e.do(r.method, r.target, r.body)
		d := wantError(t, rec, http.StatusServiceUnavailable, "ledger_unavailable", "")
		if strings.Contains(d.Message, "10.0.0.7") {
			t.Errorf("%s %s: message leaks internals: %q", r.method, r.target, d.Message)
		}
		if rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", r.method, r.target)
		}
	}
	if len(e.revoked) != 0 {
		t.Errorf("OnRevoke called although revocation failed: %v", e.revoked)
	}
}

func TestInternalErrorDoesNotLeak(t *testing.T) {
	e := newEnv(t)
	e.store.setErr(errors.New(`pq: relation "vault_keys_hunter2" does not exist`))
	for _, r := range storeRequests {
		rec := e.do(r.method, r.target, r.body)
		d := wantError(t, rec, http.StatusInternalServerError, "internal_error", "")
		if strings.Contains(rec.Body.String(), "hunter2") || d.Message != "internal error" {
			t.Errorf("%s %s: body leaks internals: %s", r.method, r.target, rec.Body)
		}
	}
	if !strings.Contains(e.logText(), "hunter2") {
		t.Errorf("the internal error was not logged for operators")
	}
}
