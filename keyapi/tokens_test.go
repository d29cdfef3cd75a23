package keyapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)

// ledgerEnv is a Handler on the real embedded ledger, for the token, role,
// policy and patch tests.
func ledgerEnv(t *testing.T) *env {
	t.Helper()
	store, err := ledger.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "l.db"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnv(t, func(c *Config) { c.Store = store })
	return e
}

// as sends a request with a stored token.
func (e *env) as(token, method, target, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.doAuth(method, target, body, "Bearer "+token)
}

// newToken creates a token as the bootstrap admin and returns its id and
// secret.
func (e *env) newToken(body string) (id, secret string) {
	e.t.Helper()
	rec := e.do(http.MethodPost, "/vault/tokens", body)
	if rec.Code != http.StatusCreated {
		e.t.Fatalf("POST /vault/tokens %s: %d %s", body, rec.Code, rec.Body)
	}
	var v tokenView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		e.t.Fatal(err)
	}
	if !plausibleKeyID(v.TokenID) || !plausibleKeyID(v.Token) || !strings.HasPrefix(v.TokenID, "tk") {
		e.t.Fatalf("token id %q / token %q not [A-Za-z0-9]", v.TokenID, v.Token)
	}
	return v.TokenID, v.Token
}

const issuerPolicy = `{"vendors":["stripe"],"max_key_usd":500,"max_ttl":"6h",` +
	`"allowed_endpoints":["POST /v1/payment_intents","GET /v1/customers/*"],"run_label_prefix":"windmill/","daily_usd_cap":2000}`

func TestTokenRoles(t *testing.T) {
	e := ledgerEnv(t)
	issuerID, issuer := e.newToken(`{"name":"windmill-prod","role":"issuer","policy":` + issuerPolicy + `}`)
	_, reader := e.newToken(`{"name":"grafana","role":"reader"}`)
	_, other := e.newToken(`{"name":"other","role":"issuer"}`)

	// whoami answers the real role.
	if m := decodeMap(t, e.as(issuer, "GET", "/vault/whoami", "")); m["role"] != "issuer" || m["token_id"] != issuerID ||
		m["policy"].(map[string]any)["run_label_prefix"] != "windmill/" {
		t.Errorf("whoami as issuer = %v", m)
	}
	if m := decodeMap(t, e.as(reader, "GET", "/vault/whoami", "")); m["role"] != "reader" {
		t.Errorf("whoami as reader = %v", m)
	}

	key := `{"vendor":"stripe","total_usd_cap":50,"allowed_endpoints":["POST /v1/payment_intents"],"expires_in":"1h","agent_run_label":"windmill/r1"}`
	rec := e.as(issuer, "POST", "/vault/keys", key)
	if rec.Code != http.StatusCreated {
		t.Fatalf("issuer POST /vault/keys: %d %s", rec.Code, rec.Body)
	}
	own := decodeMap(t, rec)["key_id"].(string)
	adminKey := e.createKey(validKeyBody)["key_id"].(string)
	rec = e.as(other, "POST", "/vault/keys", validKeyBody)
	otherKey := decodeMap(t, rec)["key_id"].(string)
	if u, err := e.h.store.GetKey(context.Background(), own, e.now); err != nil || u.TokenID != issuerID {
		t.Fatalf("the issuer's key records token %q (%v); want %q", u.TokenID, err, issuerID)
	}

	// Refusals, by role.
	for _, tc := range []struct {
		token, method, target, body string
		status                      int
		code                        string
	}{
		{reader, "POST", "/vault/keys", validKeyBody, 403, codeForbidden},
		{reader, "DELETE", "/vault/keys/" + adminKey, "", 403, codeForbidden},
		{reader, "PATCH", "/vault/keys/" + adminKey, `{"total_usd_cap":1}`, 403, codeForbidden},
		{reader, "DELETE", "/vault/keys?agent_run_label=x", "", 403, codeForbidden},
		{reader, "GET", "/vault/tokens", "", 403, codeForbidden},
		{reader, "POST", "/vault/tokens", `{"name":"x","role":"admin"}`, 403, codeForbidden},
		{issuer, "GET", "/vault/tokens", "", 403, codeForbidden},
		{issuer, "POST", "/vault/tokens", `{"name":"x","role":"admin"}`, 403, codeForbidden},
		{issuer, "DELETE", "/vault/tokens/" + issuerID, "", 403, codeForbidden},
		// An issuer reads the summary of a run only it issued keys for.
		{issuer, "GET", "/vault/summary?agent_run_label=windmill/0193abc", "", 404, codeNotFound},
		{issuer, "GET", "/vault/summary?agent_run_label=windmill/none", "", 404, codeNotFound},
		{issuer, "GET", "/vault/summary?day=2026-11-29", "", 403, codeForbidden},
		{issuer, "GET", "/vault/audit", "", 403, codeForbidden},
		{issuer, "GET", "/vault/keys/" + adminKey, "", 404, codeNotFound},
		{issuer, "GET", "/vault/keys/" + otherKey, "", 404, codeNotFound},
		{issuer, "DELETE", "/vault/keys/" + otherKey, "", 404, codeNotFound},
		{issuer, "PATCH", "/vault/keys/" + adminKey, `{"total_usd_cap":1}`, 404, codeNotFound},
		{issuer, "GET", "/vault/audit?key_id=" + otherKey, "", 404, codeNotFound},
		{"ktNotAToken", "GET", "/vault/keys", "", 401, "unauthorized"},
	} {
		wantError(t, e.as(tc.token, tc.method, tc.target, tc.body), tc.status, tc.code, "")
	}
	if d := wantError(t, e.as(reader, "POST", "/vault/keys", validKeyBody), 403, codeForbidden, ""); !strings.Contains(d.Message, "role (reader)") {
		t.Error("a role refusal does not name the role")
	}

	// What each role may do.
	for _, tc := range []struct{ token, method, target string }{
		{reader, "GET", "/vault/keys"},
		{reader, "GET", "/vault/keys/" + own},
		{reader, "GET", "/vault/audit"},
		{reader, "GET", "/vault/summary?agent_run_label=windmill/r1"},
		{issuer, "GET", "/vault/keys/" + own},
		{issuer, "GET", "/vault/audit?key_id=" + own},
		{issuer, "GET", "/vault/summary?agent_run_label=windmill/r1"},
	} {
		if rec := e.as(tc.token, tc.method, tc.target, ""); rec.Code != http.StatusOK {
			t.Errorf("%s %s: %d %s", tc.method, tc.target, rec.Code, rec.Body)
		}
	}
	var list keyList
	if err := json.Unmarshal(e.as(issuer, "GET", "/vault/keys", "").Body.Bytes(), &list); err != nil ||
		len(list.Data) != 1 || list.Data[0].KeyID != own {
		t.Errorf("issuer lists %+v (%v); want only its own key", list.Data, err)
	}
	if err := json.Unmarshal(e.as(reader, "GET", "/vault/keys", "").Body.Bytes(), &list); err != nil || len(list.Data) != 3 {
		t.Errorf("reader lists %d keys (%v); want 3", len(list.Data), err)
	}
	if rec := e.as(issuer, "DELETE", "/vault/keys/"+own, ""); rec.Code != http.StatusOK {
		t.Errorf("issuer revokes its own key: %d %s", rec.Code, rec.Body)
	}

	// A failed token is logged without the candidate secret.
	for _, entry := range e.logs.All() {
		for _, f := range entry.Context {
			if strings.Contains(f.String, "ktNotAToken") {
				t.Errorf("log %q carries the candidate token", entry.Message)
			}
		}
	}
}

func TestPolicyBounds(t *testing.T) {
	e := ledgerEnv(t)
	_, issuer := e.newToken(`{"name":"windmill","role":"issuer","policy":` + issuerPolicy + `}`)
	base := map[string]any{"vendor": "stripe", "total_usd_cap": 50, "expires_in": "1h",
		"allowed_endpoints": []string{"POST /v1/payment_intents", "GET /v1/customers/cus_1"}, "agent_run_label": "windmill/r1"}
	body := func(edit func(m map[string]any)) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		edit(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	if rec := e.as(issuer, "POST", "/vault/keys", body(func(map[string]any) {})); rec.Code != http.StatusCreated {
		t.Fatalf("a key inside the policy: %d %s", rec.Code, rec.Body)
	}
	for _, tc := range []struct {
		name, field, message string
		edit                 func(m map[string]any)
	}{
		{"vendor", "vendor", `vendor "twilio" is outside this token's policy (vendors: stripe)`,
			func(m map[string]any) { m["vendor"] = "twilio" }},
		{"max_key_usd", "total_usd_cap", "total_usd_cap $500.01 is above this token's max_key_usd $500.00",
			func(m map[string]any) { m["total_usd_cap"] = 500.01 }},
		{"max_key_usd needs a total", "total_usd_cap", "max_key_usd $500.00: total_usd_cap is required",
			func(m map[string]any) { delete(m, "total_usd_cap"); m["daily_usd_cap"] = 10 }},
		{"max_key_usd daily", "daily_usd_cap", "daily_usd_cap $600.00 is above this token's max_key_usd $500.00",
			func(m map[string]any) { m["daily_usd_cap"] = 600 }},
		{"max_ttl", "expires_in", "expires_in 7h0m0s is above this token's max_ttl 6h",
			func(m map[string]any) { m["expires_in"] = "7h" }},
		{"allowed_endpoints wider", "allowed_endpoints[1]", `allowed_endpoints[1] "POST /v1/*" is outside this token's allowed_endpoints`,
			func(m map[string]any) { m["allowed_endpoints"] = []string{"POST /v1/payment_intents", "POST /v1/*"} }},
		{"allowed_endpoints other method", "allowed_endpoints[0]", `allowed_endpoints[0] "GET /v1/payment_intents" is outside`,
			func(m map[string]any) { m["allowed_endpoints"] = []string{"GET /v1/payment_intents"} }},
		{"run_label_prefix", "agent_run_label", `agent_run_label "cron/r1" does not start with this token's run_label_prefix "windmill/"`,
			func(m map[string]any) { m["agent_run_label"] = "cron/r1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := wantError(t, e.as(issuer, "POST", "/vault/keys", body(tc.edit)), http.StatusForbidden, codePolicyViolation, tc.field)
			if !strings.Contains(d.Message, tc.message) {
				t.Errorf("message %q; want it to contain %q", d.Message, tc.message)
			}
		})
	}
	// Without expires_in, the key lives the shorter of the default and
	// the policy's max_ttl.
	rec := e.as(issuer, "POST", "/vault/keys", body(func(m map[string]any) { delete(m, "expires_in") }))
	if rec.Code != http.StatusCreated {
		t.Fatalf("no expires_in: %d %s", rec.Code, rec.Body)
	}

	// Bad policies are refused at token creation, naming the field.
	for _, tc := range []struct{ policy, field string }{
		{`{"vendors":["nope"]}`, "policy.vendors[0]"},
		{`{"max_key_usd":-1}`, "policy.max_key_usd"},
		{`{"max_ttl":"soon"}`, "policy.max_ttl"},
		{`{"allowed_endpoints":["post /v1"]}`, "policy.allowed_endpoints[0]"},
		{`{"daily_usd_cap":0}`, "policy.daily_usd_cap"},
	} {
		wantError(t, e.do("POST", "/vault/tokens", `{"name":"x","role":"issuer","policy":`+tc.policy+`}`),
			http.StatusBadRequest, codeParameterInvalid, tc.field)
	}
	wantError(t, e.do("POST", "/vault/tokens", `{"name":"x","role":"reader","policy":{}}`), http.StatusBadRequest, codeParameterInvalid, "policy")
	wantError(t, e.do("POST", "/vault/tokens", `{"name":"x","role":"root"}`), http.StatusBadRequest, codeParameterInvalid, "role")
	wantError(t, e.do("POST", "/vault/tokens", `{"role":"reader"}`), http.StatusBadRequest, codeParameterMissing, "name")
}

func TestTokenDelete(t *testing.T) {
	e := ledgerEnv(t)
	keep, keepSecret := e.newToken(`{"name":"a","role":"issuer"}`)
	drop, dropSecret := e.newToken(`{"name":"b","role":"issuer"}`)
	k1 := decodeMap(t, e.as(keepSecret, "POST", "/vault/keys", validKeyBody))["key_id"].(string)
	k2 := decodeMap(t, e.as(dropSecret, "POST", "/vault/keys", validKeyBody))["key_id"].(string)
	k3 := decodeMap(t, e.as(dropSecret, "POST", "/vault/keys", validKeyBody))["key_id"].(string)

	// Without revoke_keys: the token is refused, its key runs on.
	rec := e.do("DELETE", "/vault/tokens/"+keep, "")
	if m := decodeMap(t, rec); rec.Code != 200 || m["status"] != "revoked" || m["revoked_keys"] != nil {
		t.Fatalf("DELETE token: %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.as(keepSecret, "GET", "/vault/keys", ""), http.StatusUnauthorized, "unauthorized", "")
	if m := decodeMap(t, e.do("GET", "/vault/keys/"+k1, "")); m["status"] != "active" {
		t.Errorf("key of a token deleted without revoke_keys: %v", m["status"])
	}

	// With revoke_keys: every key it issued is revoked, and the cache told.
	e.revoked = nil
	rec = e.do("DELETE", "/vault/tokens/"+drop+"?revoke_keys=true", "")
	var v tokenView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 || len(v.RevokedKeys) != 2 {
		t.Fatalf("DELETE ?revoke_keys=true: %d %s", rec.Code, rec.Body)
	}
	for _, k := range []string{k2, k3} {
		if m := decodeMap(t, e.do("GET", "/vault/keys/"+k, "")); m["status"] != "revoked" {
			t.Errorf("key %s after revoke_keys: %v", k, m["status"])
		}
	}
	if len(e.revoked) != 2 {
		t.Errorf("OnRevoke called for %v; want both keys", e.revoked)
	}
	wantError(t, e.do("DELETE", "/vault/tokens/tkNoSuch", ""), http.StatusNotFound, codeNotFound, "")
	wantError(t, e.do("DELETE", "/vault/tokens/"+drop+"?revoke_keys=yes", ""), http.StatusBadRequest, codeParameterInvalid, "revoke_keys")

	var list tokenList
	if err := json.Unmarshal(e.do("GET", "/vault/tokens", "").Body.Bytes(), &list); err != nil || len(list.Data) != 2 ||
		list.Data[0].Token != "" || strings.Contains(e.do("GET", "/vault/tokens", "").Body.String(), dropSecret) {
		t.Errorf("GET /vault/tokens = %+v (%v)", list, err)
	}
}

func TestPatchKeyAndRevokeRun(t *testing.T) {
	e := ledgerEnv(t)
	_, issuer := e.newToken(`{"name":"windmill","role":"issuer","policy":` + issuerPolicy + `}`)
	key := `{"vendor":"stripe","total_usd_cap":50,"allowed_endpoints":["POST /v1/payment_intents","GET /v1/customers/*"],"expires_in":"1h","agent_run_label":"windmill/r1"}`
	id := decodeMap(t, e.as(issuer, "POST", "/vault/keys", key))["key_id"].(string)
	id2 := decodeMap(t, e.as(issuer, "POST", "/vault/keys", key))["key_id"].(string)
	adminSameRun := e.createKey(`{"vendor":"stripe","total_usd_cap":5,"agent_run_label":"windmill/r1"}`)["key_id"].(string)

	e.revoked = nil
	rec := e.as(issuer, "PATCH", "/vault/keys/"+id, `{"total_usd_cap":400,"daily_usd_cap":100,"expires_in":"5h","allowed_endpoints":["GET /v1/customers/cus_9"]}`)
	m := decodeMap(t, rec)
	if rec.Code != 200 || m["total_usd_cap"] != 400.0 || m["daily_usd_cap"] != 100.0 ||
		m["expires_at"] != formatTime(e.now.UTC().Truncate(1000).Add(5*3600e9)) {
		t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
	}
	if eps := m["allowed_endpoints"].([]any); len(eps) != 1 || eps[0] != "GET /v1/customers/cus_9" {
		t.Errorf("allowlist after PATCH = %v", eps)
	}
	if len(e.revoked) != 1 || e.revoked[0] != id {
		t.Errorf("PATCH told the key cache %v", e.revoked)
	}
	for _, tc := range []struct {
		body, code, field string
		status            int
	}{
		{`{"total_usd_cap":501}`, codePolicyViolation, "total_usd_cap", 403},
		{`{"expires_in":"7h"}`, codePolicyViolation, "expires_in", 403},
		{`{"allowed_endpoints":["GET /v1/customers/*"]}`, codeParameterInvalid, "allowed_endpoints[0]", 400}, // wider than now
		{`{"total_usd_cap":0}`, codeParameterInvalid, "total_usd_cap", 400},
		{`{}`, codeParameterMissing, "", 400},
	} {
		wantError(t, e.as(issuer, "PATCH", "/vault/keys/"+id, tc.body), tc.status, tc.code, tc.field)
	}

	// An issuer revokes its own keys of a run; the admin's key in the same
	// run stays until the admin revokes the run.
	rec = e.as(issuer, "DELETE", "/vault/keys?agent_run_label=windmill/r1", "")
	var rr runRevocation
	if err := json.Unmarshal(rec.Body.Bytes(), &rr); err != nil || rec.Code != 200 || len(rr.Revoked) != 2 {
		t.Fatalf("issuer DELETE run: %d %s", rec.Code, rec.Body)
	}
	if m := decodeMap(t, e.do("GET", "/vault/keys/"+adminSameRun, "")); m["status"] != "active" {
		t.Errorf("admin's key revoked by an issuer's run revocation")
	}
	rec = e.do("DELETE", "/vault/keys?agent_run_label=windmill/r1", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &rr); err != nil || len(rr.Revoked) != 1 || rr.Revoked[0] != adminSameRun {
		t.Fatalf("admin DELETE run: %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.do("DELETE", "/vault/keys", ""), http.StatusBadRequest, codeParameterMissing, "agent_run_label")
	wantError(t, e.as(issuer, "PATCH", "/vault/keys/"+id2, `{"total_usd_cap":5}`), http.StatusConflict, "key_revoked", "")
}

// TestFailedAuthSlowed: an address that keeps sending wrong tokens has
// them refused with 429 past the burst, until the limiter forgives a
// failure; the right token from that same address is let through all
// along (a NAT or a load balancer in front of many clients locks none
// out); the candidate tokens never reach the log.
func TestFailedAuthSlowed(t *testing.T) {
	e := newEnv(t)
	send := func(addr, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/vault/keys", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec
	}
	for i := range DefaultAuthBurst + 1 {
		wantError(t, send("198.51.100.7:4000", fmt.Sprintf("guess%d", i)), http.StatusUnauthorized, "unauthorized", "")
	}
	for i := range 10 {
		rec := send("198.51.100.7:4000", fmt.Sprintf("guessAgain%d", i))
		wantError(t, rec, http.StatusTooManyRequests, "too_many_failed_attempts", "")
		if rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		if rec := send("198.51.100.7:4001", testToken); rec.Code != http.StatusOK {
			t.Fatalf("the valid token from the throttled address: %d %s", rec.Code, rec.Body)
		}
	}
	e.now = e.now.Add(DefaultAuthRefill)
	wantError(t, send("198.51.100.7:4002", "guessLater"), http.StatusUnauthorized, "unauthorized", "")
	wantError(t, send("198.51.100.7:4002", "guessLater2"), http.StatusTooManyRequests, "too_many_failed_attempts", "")
	if logs := e.logText(); strings.Contains(logs, "guess") {
		t.Errorf("a candidate token was logged:\n%s", logs)
	}
}

// TestPatchKeepsExpiryBounded (issue 17): PATCH expires_in never revives an
// expired or revoked key, and an issuer's PATCHes never keep a key alive
// past its issue + the policy's max_ttl, however many there are.
func TestPatchKeepsExpiryBounded(t *testing.T) {
	e := ledgerEnv(t)
	_, issuer := e.newToken(`{"name":"windmill","role":"issuer","policy":` + issuerPolicy + `}`) // max_ttl 6h
	key := `{"vendor":"stripe","total_usd_cap":50,"allowed_endpoints":["POST /v1/payment_intents"],"expires_in":"1h","agent_run_label":"windmill/r9"}`
	id := decodeMap(t, e.as(issuer, "POST", "/vault/keys", key))["key_id"].(string)
	issued := e.now

	// Each PATCH asks for 5 hours from now, within max_ttl from now; the
	// third would end 7 hours after the key was issued.
	for i, wantStatus := range []int{200, 200, 403} {
		e.now = issued.Add(time.Duration(i) * time.Hour)
		rec := e.as(issuer, "PATCH", "/vault/keys/"+id, `{"expires_in":"5h"}`)
		if wantStatus == 403 {
			wantError(t, rec, http.StatusForbidden, codePolicyViolation, "expires_in")
		} else if rec.Code != 200 {
			t.Fatalf("PATCH %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	// Up to the bound itself is fine: 2h + 4h = 6h after issue.
	if rec := e.as(issuer, "PATCH", "/vault/keys/"+id, `{"expires_in":"4h"}`); rec.Code != 200 {
		t.Fatalf("PATCH to exactly max_ttl: %d %s", rec.Code, rec.Body)
	}

	// Once expired, the key stays expired: for the issuer and the admin.
	e.now = issued.Add(6*time.Hour + time.Second)
	wantError(t, e.as(issuer, "PATCH", "/vault/keys/"+id, `{"expires_in":"1h"}`), http.StatusConflict, "key_expired", "")
	wantError(t, e.do("PATCH", "/vault/keys/"+id, `{"expires_in":"1h"}`), http.StatusConflict, "key_expired", "")
	if m := decodeMap(t, e.do("GET", "/vault/keys/"+id, "")); m["status"] != "expired" {
		t.Fatalf("status after PATCHes of an expired key: %v", m["status"])
	}
	// A revoked key stays revoked.
	id2 := e.createKey(`{"vendor":"stripe","total_usd_cap":5,"expires_in":"1h","agent_run_label":"windmill/r9"}`)["key_id"].(string)
	if rec := e.do("DELETE", "/vault/keys/"+id2, ""); rec.Code != 200 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.do("PATCH", "/vault/keys/"+id2, `{"expires_in":"2h"}`), http.StatusConflict, "key_revoked", "")
}
