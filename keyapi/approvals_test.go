package keyapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)

// newApprovalEnv is an env on a real embedded ledger, which keeps
// approvals; decided collects OnApprovalDecided calls.
func newApprovalEnv(t *testing.T) (*env, ledger.ApprovalStore, *[]ledger.Approval) {
	t.Helper()
	store, err := ledger.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "l.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var decided []ledger.Approval
	e := newEnv(t, func(c *Config) {
		c.Store = store
		c.OnApprovalDecided = func(_ context.Context, a ledger.Approval) { decided = append(decided, a) }
	})
	return e, store.(ledger.ApprovalStore), &decided
}

// askApproval records a pending approval for key (as the gate would).
func askApproval(t *testing.T, e *env, s ledger.ApprovalStore, key map[string]any, id string) {
	t.Helper()
	u, err := e.h.store.GetKey(context.Background(), key["key_id"].(string), e.now)
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateApproval(context.Background(), ledger.Approval{ID: id, KeyID: u.ID, TokenID: u.TokenID, Vendor: u.Vendor,
		Method: "POST", Path: "/v1/refunds", Estimate: 60_000_000, RequestHash: "h", CallID: "cl" + id,
		RequestedAt: e.h.clock(), ExpiresAt: e.h.clock().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
}

func TestApprovalRoles(t *testing.T) {
	e, s, decided := newApprovalEnv(t)
	_, issuer := e.newToken(`{"name":"run","role":"issuer"}`)
	_, approver := e.newToken(`{"name":"boss","role":"approver"}`)
	_, admin := e.newToken(`{"name":"ops","role":"admin"}`)

	// An approver cannot issue keys.
	wantError(t, e.doAuth("POST", "/vault/keys", validKeyBody, "Bearer "+approver), http.StatusForbidden, codeForbidden, "")

	body := `{"vendor":"stripe","total_usd_cap":100,"approval":{"above_usd":50,"wait":"2s"}}`
	rec := e.doAuth("POST", "/vault/keys", body, "Bearer "+issuer)
	if rec.Code != http.StatusCreated {
		t.Fatalf("issue: %d %s", rec.Code, rec.Body)
	}
	key := decodeMap(t, rec)
	rule := key["approval"].(map[string]any)
	if rule["above_usd"] != 50.0 || rule["wait"] != "2s" || rule["ttl"] != "1h0m0s" {
		t.Fatalf("approval rule = %v", rule)
	}
	askApproval(t, e, s, key, "apRoles1")

	// The issuer reads its own key's approvals, not others'.
	keyID := key["key_id"].(string)
	if rec := e.doAuth("GET", "/vault/approvals/apRoles1", "", "Bearer "+issuer); rec.Code != 200 {
		t.Fatalf("issuer reading its approval: %d %s", rec.Code, rec.Body)
	}
	if rec := e.doAuth("GET", "/vault/approvals?key_id="+keyID, "", "Bearer "+issuer); rec.Code != 200 {
		t.Fatalf("issuer listing its key's approvals: %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.doAuth("GET", "/vault/approvals", "", "Bearer "+issuer), http.StatusForbidden, codeForbidden, "")

	// The issuer of the key may not decide it, even as an admin.
	wantError(t, e.doAuth("POST", "/vault/approvals/apRoles1/approve", `{"reason":"me"}`, "Bearer "+issuer), http.StatusForbidden, codeForbidden, "")
	rec = e.doAuth("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"approval":{"above_usd":0}}`, "Bearer "+admin)
	adminKey := decodeMap(t, rec)
	askApproval(t, e, s, adminKey, "apRoles2")
	wantError(t, e.doAuth("GET", "/vault/approvals/apRoles2", "", "Bearer "+issuer), http.StatusNotFound, codeNotFound, "")
	wantError(t, e.doAuth("GET", "/vault/approvals?key_id="+adminKey["key_id"].(string), "", "Bearer "+issuer), http.StatusNotFound, codeNotFound, "")
	wantError(t, e.doAuth("POST", "/vault/approvals/apRoles2/approve", "", "Bearer "+admin), http.StatusForbidden, codeForbidden, "")

	// An approver lists and decides.
	rec = e.doAuth("GET", "/vault/approvals?status=pending", "", "Bearer "+approver)
	var list struct{ Approvals []approvalView }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list.Approvals) != 2 {
		t.Fatalf("list pending: %d %s", rec.Code, rec.Body)
	}
	e.now = e.now.Add(1500 * time.Millisecond)
	rec = e.doAuth("POST", "/vault/approvals/apRoles1/approve", `{"reason":"refund checked"}`, "Bearer "+approver)
	var v approvalView
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &v) != nil || v.Status != "approved" || v.DecidedBy == nil ||
		v.Reason != "refund checked" || v.DecidedAfterMS == nil || *v.DecidedAfterMS != 1500 {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	if len(*decided) != 1 || (*decided)[0].ID != "apRoles1" {
		t.Fatalf("OnApprovalDecided calls: %v", *decided)
	}
	// Decided once.
	wantError(t, e.doAuth("POST", "/vault/approvals/apRoles1/deny", "", "Bearer "+approver), http.StatusConflict, "approval_not_pending", "")
	// The bootstrap admin did not issue the admin token's key: it may deny it.
	if rec := e.do("POST", "/vault/approvals/apRoles2/deny", `{"reason":"no"}`); rec.Code != 200 {
		t.Fatalf("deny: %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.doAuth("POST", "/vault/approvals/apNone/approve", "", "Bearer "+approver), http.StatusNotFound, codeNotFound, "")
	wantError(t, e.do("GET", "/vault/approvals?status=nope", ""), http.StatusBadRequest, codeParameterInvalid, "status")
	rec = e.do("GET", "/vault/approvals/apRoles2", "")
	if rec.Code != 200 || decodeMap(t, rec)["status"] != "denied" {
		t.Fatalf("get: %d %s", rec.Code, rec.Body)
	}
}

func TestApprovalValidationAndPolicy(t *testing.T) {
	e, _, _ := newApprovalEnv(t)
	for _, tc := range []struct{ approval, field string }{
		{`{}`, "approval.above_usd"},
		{`{"above_usd":null}`, "approval.above_usd"},
		{`{"above_usd":"abc"}`, "approval.above_usd"},
		{`{"above_usd":-1}`, "approval.above_usd"},
		{`{"above_usd":50,"wait":"2m"}`, "approval.wait"},
		{`{"above_usd":50,"ttl":"nope"}`, "approval.ttl"},
	} {
		rec := e.do("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"approval":`+tc.approval+`}`)
		if rec.Code != 400 || apiErr(t, rec).Field != tc.field {
			t.Fatalf("approval %s: %d %s", tc.approval, rec.Code, rec.Body)
		}
	}
	// A policy's rule applies to every key of the token; a key may only be
	// stricter.
	_, issuer := e.newToken(`{"name":"run","role":"issuer","policy":{"approval":{"above_usd":50,"wait":"10s"}}}`)
	rec := e.doAuth("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100}`, "Bearer "+issuer)
	if rec.Code != 201 {
		t.Fatalf("issue under policy: %d %s", rec.Code, rec.Body)
	}
	if rule := decodeMap(t, rec)["approval"].(map[string]any); rule["above_usd"] != 50.0 || rule["wait"] != "10s" {
		t.Fatalf("policy rule not applied: %v", rule)
	}
	wantError(t, e.doAuth("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"approval":{"above_usd":80}}`, "Bearer "+issuer),
		http.StatusForbidden, codePolicyViolation, "approval.above_usd")
	wantError(t, e.doAuth("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"approval":{"above_usd":10,"ttl":"2h"}}`, "Bearer "+issuer),
		http.StatusForbidden, codePolicyViolation, "approval.ttl")
	rec = e.doAuth("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"approval":{"above_usd":10}}`, "Bearer "+issuer)
	if rec.Code != 201 || decodeMap(t, rec)["approval"].(map[string]any)["above_usd"] != 10.0 {
		t.Fatalf("stricter key: %d %s", rec.Code, rec.Body)
	}
	// The policy reads back with its rule.
	rec = e.doAuth("GET", "/vault/whoami", "", "Bearer "+issuer)
	if pol := decodeMap(t, rec)["policy"].(map[string]any); pol["approval"] == nil {
		t.Fatalf("whoami policy without approval: %s", rec.Body)
	}
}

// TestApprovalPatch: PATCH replaces a key's approval rule. An issuer may
// only make it stricter (a lower above_usd, a shorter ttl) or add one; an
// admin may relax or remove it; a token's policy bounds the new rule as at
// issue and keeps its keys from losing theirs.
func TestApprovalPatch(t *testing.T) {
	e, _, _ := newApprovalEnv(t)
	_, issuer := e.newToken(`{"name":"run","role":"issuer"}`)
	rule := func(rec *httptest.ResponseRecorder) map[string]any {
		t.Helper()
		if rec.Code != http.StatusOK {
			t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
		}
		r, _ := decodeMap(t, rec)["approval"].(map[string]any)
		return r
	}
	rec := e.as(issuer, "POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"approval":{"above_usd":50,"ttl":"1h"}}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("issue: %d %s", rec.Code, rec.Body)
	}
	path := "/vault/keys/" + decodeMap(t, rec)["key_id"].(string)

	if r := rule(e.as(issuer, "PATCH", path, `{"approval":{"above_usd":20,"wait":"5s","ttl":"30m"}}`)); r["above_usd"] != 20.0 || r["wait"] != "5s" || r["ttl"] != "30m0s" {
		t.Fatalf("stricter rule: %v", r)
	}
	for _, tc := range []struct {
		body, field string
		status      int
	}{
		{`{"approval":{"above_usd":30}}`, "approval.above_usd", http.StatusForbidden},
		{`{"approval":{"above_usd":20,"ttl":"1h"}}`, "approval.ttl", http.StatusForbidden},
		{`{"approval":{}}`, "approval", http.StatusForbidden},
		{`{"approval":null}`, "approval", http.StatusForbidden},
		{`{"approval":{"above_usd":10,"wait":"2m"}}`, "approval.wait", http.StatusBadRequest},
		{`{"approval":{"above_usd":10,"limit":1}}`, "approval", http.StatusBadRequest},
		{`{"approval":"strict"}`, "approval", http.StatusBadRequest},
	} {
		code := codePolicyViolation
		if tc.status == http.StatusBadRequest {
			code = codeParameterInvalid
		}
		wantError(t, e.as(issuer, "PATCH", path, tc.body), tc.status, code, tc.field)
	}
	if r := rule(e.do("GET", path, "")); r["above_usd"] != 20.0 {
		t.Fatalf("a refused PATCH changed the rule: %v", r)
	}
	// An admin relaxes it, and removes it; then the issuer may add one.
	if r := rule(e.do("PATCH", path, `{"approval":{"above_usd":500}}`)); r["above_usd"] != 500.0 {
		t.Fatalf("admin relaxing: %v", r)
	}
	if r := rule(e.do("PATCH", path, `{"approval":null}`)); r != nil {
		t.Fatalf("admin removing: %v", r)
	}
	if r := rule(e.as(issuer, "PATCH", path, `{"approval":{"above_usd":0}}`)); r["above_usd"] != 0.0 {
		t.Fatalf("issuer adding a rule: %v", r)
	}

	// Under a policy with a rule: bounded as at issue, never removed.
	_, bound := e.newToken(`{"name":"bound","role":"issuer","policy":{"approval":{"above_usd":50}}}`)
	rec = e.as(bound, "POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("issue under policy: %d %s", rec.Code, rec.Body)
	}
	bpath := "/vault/keys/" + decodeMap(t, rec)["key_id"].(string)
	wantError(t, e.as(bound, "PATCH", bpath, `{"approval":{}}`), http.StatusForbidden, codePolicyViolation, "approval")
	if r := rule(e.as(bound, "PATCH", bpath, `{"approval":{"above_usd":40}}`)); r["above_usd"] != 40.0 {
		t.Fatalf("stricter under policy: %v", r)
	}
}
