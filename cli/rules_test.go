package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestIssueAndPatchRules: issue and patch take the rules' flags; patch
// keeps the rules it is not given.
func TestIssueAndPatchRules(t *testing.T) {
	url := server(t)
	code, out, errOut := run(t, url, "issue", "--vendor", "stripe", "--total-usd-cap", "100", "--endpoint", "POST /v1/payment_intents",
		"--max-call-usd", "25", "--rate", "30/1m", "--allow", "customer=cus_A,cus_B", "--once-per", "customer", "--json")
	if code != ExitOK {
		t.Fatalf("issue: exit %d: %s", code, errOut)
	}
	var k struct {
		KeyID string          `json:"key_id"`
		Rules json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatal(err)
	}
	if string(k.Rules) != `{"max_call_usd":25,"rate":"30/1m","allow":{"customer":["cus_A","cus_B"]},"once_per":"customer"}` {
		t.Fatalf("issued rules %s", k.Rules)
	}
	code, out, errOut = run(t, url, "patch", k.KeyID, "--max-calls", "10", "--allow", "customer=cus_A", "--json")
	if code != ExitOK || !strings.Contains(out, `"rules":{"max_call_usd":25,"max_calls":10,"rate":"30/1m","allow":{"customer":["cus_A"]},"once_per":"customer"}`) {
		t.Fatalf("patch: exit %d %s %s", code, out, errOut)
	}
	for _, args := range [][]string{
		{"issue", "--vendor", "stripe", "--total-usd-cap", "1", "--allow", "customer"},
		{"issue", "--vendor", "stripe", "--total-usd-cap", "1", "--max-calls", "0"},
		{"issue", "--vendor", "stripe", "--total-usd-cap", "1", "--max-call-usd", "1.0000001"},
	} {
		if code, _, _ := run(t, url, args...); code == ExitOK {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestIssueAndPatchApproval: issue and patch take the approval rule's
// flags; patch replaces the rule whole, and --no-approval removes it.
func TestIssueAndPatchApproval(t *testing.T) {
	url := server(t)
	code, out, errOut := run(t, url, "issue", "--vendor", "stripe", "--total-usd-cap", "100", "--endpoint", "POST /v1/refunds",
		"--approval-above-usd", "50", "--approval-wait", "10s", "--json")
	if code != ExitOK {
		t.Fatalf("issue: exit %d: %s", code, errOut)
	}
	var k struct {
		KeyID    string          `json:"key_id"`
		Approval json.RawMessage `json:"approval"`
	}
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatal(err)
	}
	if string(k.Approval) != `{"above_usd":50,"wait":"10s","ttl":"1h0m0s"}` {
		t.Fatalf("issued approval %s", k.Approval)
	}
	code, out, errOut = run(t, url, "patch", k.KeyID, "--approval-above-usd", "20", "--approval-ttl", "30m", "--json")
	if code != ExitOK || !strings.Contains(out, `"approval":{"above_usd":20,"wait":"30s","ttl":"30m0s"}`) {
		t.Fatalf("patch: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut = run(t, url, "patch", k.KeyID, "--no-approval", "--json")
	if code != ExitOK || !strings.Contains(out, `"approval":null`) {
		t.Fatalf("patch --no-approval: exit %d %s %s", code, out, errOut)
	}
	for _, args := range [][]string{
		{"issue", "--vendor", "stripe", "--total-usd-cap", "1", "--approval-wait", "10s"},
		{"issue", "--vendor", "stripe", "--total-usd-cap", "1", "--approval-above-usd", "ten"},
		{"patch", k.KeyID, "--no-approval", "--approval-above-usd", "5"},
	} {
		if code, _, _ := run(t, url, args...); code == ExitOK {
			t.Errorf("%v: accepted", args)
		}
	}
}
