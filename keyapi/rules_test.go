package keyapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/rules"
)

func ruleEnv(t *testing.T) *env {
	t.Helper()
	e := ledgerEnv(t)
	def, err := rules.Parse("default_rules", json.RawMessage(`{"allow":{"to_country":["US","CA"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	e.h.subjects = map[string][]string{"stripe": {"customer", "currency"}, "twilio": {"to", "to_country"}}
	e.h.defaults = map[string]*rules.Rules{"twilio": def}
	e.h.keyReaders = []func(*http.Request) (string, bool){func(r *http.Request) (string, bool) {
		s, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return s, ok
	}}
	return e
}

// TestKeyRules: rules are taken on POST /vault/keys and shown by GET; a bad
// rule or a subject the vendor never reads is a 400 naming the field; a
// key without rules gets its vendor's default_rules.
func TestKeyRules(t *testing.T) {
	e := ruleEnv(t)
	rec := e.do("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"agent_run_label":"r",
		"rules":{"max_call_usd":25,"max_calls":60,"rate":"30/1m","allow":{"customer":["cus_A","cus_B"]},"once_per":"customer"}}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create with rules: %d %s", rec.Code, rec.Body)
	}
	var v keyView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	got := e.do("GET", "/vault/keys/"+v.KeyID, "")
	if !strings.Contains(got.Body.String(), `"rules":{"max_call_usd":25,"max_calls":60,"rate":"30/1m","allow":{"customer":["cus_A","cus_B"]},"once_per":"customer"}`) {
		t.Errorf("GET shows %s", got.Body)
	}
	for body, field := range map[string]string{
		`{"rate":"fast"}`:                 "rules.rate",
		`{"max_calls":0}`:                 "rules.max_calls",
		`{"allow":{"to_country":["US"]}}`: "rules.allow.to_country",
		`{"once_per":"recipient"}`:        "rules.once_per",
		`{"allow":{"customer":[]}}`:       "rules.allow.customer",
		`{"max_call_usd":1.0000001}`:      "rules.max_call_usd",
		`{"allow":{"customer":"cus_A"}}`:  "rules",
	} {
		wantError(t, e.do("POST", "/vault/keys", `{"vendor":"stripe","total_usd_cap":100,"rules":`+body+`}`),
			http.StatusBadRequest, codeParameterInvalid, field)
	}
	tw := e.createKey(`{"vendor":"twilio","total_usd_cap":5}`)
	if r, _ := json.Marshal(tw["rules"]); string(r) != `{"allow":{"to_country":["US","CA"]}}` {
		t.Errorf("twilio key without rules got %s; want the vendor's default_rules", r)
	}
	own := e.createKey(`{"vendor":"twilio","total_usd_cap":5,"rules":{"rate":"1/1s"}}`)
	if r, _ := json.Marshal(own["rules"]); string(r) != `{"rate":"1/1s"}` {
		t.Errorf("twilio key with its own rules got %s", r)
	}
}

// TestRulePolicyBounds: a policy's rules bound its keys: an issuer cannot
// issue or PATCH a key wider (403 policy_violation naming the rule); PATCH
// narrows, and only an admin widens.
func TestRulePolicyBounds(t *testing.T) {
	e := ruleEnv(t)
	_, issuer := e.newToken(`{"name":"w","role":"issuer","policy":{"vendors":["stripe"],
		"rules":{"max_call_usd":50,"max_calls":100,"rate":"30/1m","allow":{"customer":["cus_A","cus_B","cus_C"]},"once_per":"customer"}}}`)
	key := func(r string) string {
		return `{"vendor":"stripe","total_usd_cap":100,"rules":` + r + `}`
	}
	ok := `{"max_call_usd":25,"max_calls":60,"rate":"10/1m","allow":{"customer":["cus_A","cus_B"]},"once_per":"customer"}`
	rec := e.as(issuer, "POST", "/vault/keys", key(ok))
	if rec.Code != http.StatusCreated {
		t.Fatalf("a key inside the policy's rules: %d %s", rec.Code, rec.Body)
	}
	var v keyView
	_ = json.Unmarshal(rec.Body.Bytes(), &v)
	for r, field := range map[string]string{
		`{"max_call_usd":51,"max_calls":60,"rate":"10/1m","allow":{"customer":["cus_A"]},"once_per":"customer"}`: "rules.max_call_usd",
		`{"max_call_usd":5,"max_calls":101,"rate":"10/1m","allow":{"customer":["cus_A"]},"once_per":"customer"}`: "rules.max_calls",
		`{"max_call_usd":5,"max_calls":60,"rate":"31/1m","allow":{"customer":["cus_A"]},"once_per":"customer"}`:  "rules.rate",
		`{"max_call_usd":5,"max_calls":60,"rate":"10/1m","allow":{"customer":["cus_Z"]},"once_per":"customer"}`:  "rules.allow.customer",
		`{"max_call_usd":5,"max_calls":60,"rate":"10/1m","once_per":"customer"}`:                                 "rules.allow.customer",
		`{"max_call_usd":5,"max_calls":60,"rate":"10/1m","allow":{"customer":["cus_A"]}}`:                        "rules.once_per",
		`null`: "rules.max_call_usd",
	} {
		d := wantError(t, e.as(issuer, "POST", "/vault/keys", key(r)), http.StatusForbidden, codePolicyViolation, field)
		if !strings.Contains(d.Message, field) {
			t.Errorf("%s: message %q does not name the rule", r, d.Message)
		}
	}
	// PATCH narrows...
	narrow := `{"rules":{"max_call_usd":20,"max_calls":10,"rate":"5/1m","allow":{"customer":["cus_A"]},"once_per":"customer"}}`
	if rec := e.as(issuer, "PATCH", "/vault/keys/"+v.KeyID, narrow); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"max_calls":10`) {
		t.Fatalf("narrowing PATCH: %d %s", rec.Code, rec.Body)
	}
	// ... never widens, even within the policy, for an issuer ...
	wantError(t, e.as(issuer, "PATCH", "/vault/keys/"+v.KeyID, `{"rules":`+ok+`}`), http.StatusForbidden, codePolicyViolation, "rules.max_call_usd")
	wantError(t, e.as(issuer, "PATCH", "/vault/keys/"+v.KeyID, `{"rules":{}}`), http.StatusForbidden, codePolicyViolation, "rules.max_call_usd")
	// ... and an admin may widen.
	if rec := e.do("PATCH", "/vault/keys/"+v.KeyID, `{"rules":{"max_calls":1000}}`); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"rules":{"max_calls":1000}`) {
		t.Fatalf("admin widening PATCH: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do("PATCH", "/vault/keys/"+v.KeyID, `{"rules":{}}`); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"rules":null`) {
		t.Fatalf("admin removing rules: %d %s", rec.Code, rec.Body)
	}
	// The policy shows its rules.
	if rec := e.as(issuer, "GET", "/vault/whoami", ""); !strings.Contains(rec.Body.String(), `"once_per":"customer"`) {
		t.Errorf("whoami: %s", rec.Body)
	}
}

// TestVaultSelf: GET /vault/self with the vault key tells the key its caps,
// spend, rules, calls left and expiry; anything else is a 401.
func TestVaultSelf(t *testing.T) {
	e := ruleEnv(t)
	k := e.createKey(`{"vendor":"stripe","total_usd_cap":100,"rules":{"max_calls":3,"once_per":"customer"}}`)
	rec := e.doAuth("GET", "/vault/self", "", "Bearer "+k["vault_key"].(string))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /vault/self: %d %s", rec.Code, rec.Body)
	}
	var v map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &v)
	if v["key_id"] != k["key_id"] || v["calls_left"] != float64(3) || v["remaining_usd"] != float64(100) || v["vault_key"] != nil ||
		v["expires_at"] != k["expires_at"] {
		t.Errorf("self = %s", rec.Body)
	}
	if r, _ := json.Marshal(v["rules"]); string(r) != `{"max_calls":3,"once_per":"customer"}` {
		t.Errorf("self rules %s", r)
	}
	wantError(t, e.doAuth("GET", "/vault/self", "", "Bearer "+testToken), http.StatusUnauthorized, "unauthorized", "")
	wantError(t, e.doAuth("GET", "/vault/self", "", ""), http.StatusUnauthorized, "unauthorized", "")
	wantError(t, e.doAuth("POST", "/vault/self", "", "Bearer "+k["vault_key"].(string)), http.StatusMethodNotAllowed, "method_not_allowed", "")
}
