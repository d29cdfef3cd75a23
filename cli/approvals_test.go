package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func TestApprovalsApproveDeny(t *testing.T) {
	url, store := serverStore(t)
	code, out, errOut := run(t, url, "tokens", "create", "--name", "boss", "--role", "approver", "--json")
	if code != ExitOK {
		t.Fatalf("tokens create: %d %s", code, errOut)
	}
	var tk struct{ Token string }
	if err := json.Unmarshal([]byte(out), &tk); err != nil || tk.Token == "" {
		t.Fatalf("token: %s", out)
	}
	asApprover := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		c := Main(args, Config{URL: url, Token: tk.Token, Stdout: &o, Stderr: &e})
		return c, o.String(), e.String()
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	as := store.(ledger.ApprovalStore)
	if err := store.CreateKey(context.Background(), ledger.Key{ID: "vkCli", Hash: ledger.HashSecret("s"), Vendor: "stripe",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"apCli1", "apCli2"} {
		if err := as.CreateApproval(context.Background(), ledger.Approval{ID: id, KeyID: "vkCli", Vendor: "stripe", Method: "POST",
			Path: "/v1/refunds", Estimate: 60_000_000, RequestHash: "h", CallID: "cl" + id, RequestedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ = run(t, url, "approvals")
	if code != ExitOK || !strings.Contains(out, "apCli1") || !strings.Contains(out, "apCli2") || !strings.Contains(out, "$60.00") {
		t.Fatalf("approvals: %d\n%s", code, out)
	}
	// The bootstrap token issued the key: it may not decide.
	if code, _, errOut := run(t, url, "approve", "apCli1"); code != ExitAPIError || !strings.Contains(errOut, "issued") {
		t.Fatalf("issuer approving: %d %s", code, errOut)
	}
	if code, out, errOut := asApprover("approve", "apCli1", "--reason", "ok"); code != ExitOK || !strings.HasPrefix(out, "approved apCli1") {
		t.Fatalf("approve: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := asApprover("deny", "apCli2", "--reason", "no"); code != ExitOK || !strings.HasPrefix(out, "denied apCli2") {
		t.Fatalf("deny: %d %s %s", code, out, errOut)
	}
	if code, _, _ := asApprover("deny", "apCli2"); code != ExitAPIError {
		t.Fatalf("deciding twice: %d", code)
	}
	code, out, _ = run(t, url, "approvals", "--status", "denied")
	if code != ExitOK || !strings.Contains(out, "apCli2") || strings.Contains(out, "apCli1") {
		t.Fatalf("approvals --status denied: %d\n%s", code, out)
	}
	if code, _, _ := run(t, url, "approve"); code != ExitUsage {
		t.Fatalf("approve without an id: %d", code)
	}
}
