package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// keybrakeCLI runs `caddy keybrake args…` from the real binary against url
// with the given token, and returns its exit code and output.
func keybrakeCLI(t *testing.T, url, token string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(env.caddyBin, append([]string{"keybrake"}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "KEYBRAKE_URL=" + url, "KEYBRAKE_API_TOKEN=" + token}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("running caddy keybrake %v: %v", args, err)
	return 0, "", ""
}

// TestCLI drives `caddy keybrake` against a running Keybrake: issue a key,
// charge with it, find the run behind the charge, read the summary, revoke,
// and see the next charge refused.
func TestCLI(t *testing.T) {
	need(t, false)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": env.stripeMock}})
	cli := func(args ...string) (int, string, string) { return keybrakeCLI(t, n.url, apiToken, args...) }

	code, out, errOut := cli("issue", "--vendor", "stripe", "--total-usd-cap", "5", "--endpoint", "POST /v1/payment_intents",
		"--run", "cli-e2e", "--json")
	var key issuedKey
	if code != 0 || json.Unmarshal([]byte(out), &key) != nil || key.VaultKey == "" {
		t.Fatalf("issue: exit %d\n%s\n%s", code, out, errOut)
	}
	var pis []string
	for range 2 {
		pi, err := createPI(stripeClient(n, key.VaultKey, ""), 100, "")
		if err != nil {
			t.Fatalf("charge: %v", err)
		}
		pis = append(pis, pi.ID)
	}

	// The run behind a charge.
	code, out, errOut = cli("audit", "--txn", pis[1], "--json")
	var found struct {
		Data []auditCall `json:"data"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &found) != nil || len(found.Data) != 1 ||
		found.Data[0].RunLabel != "cli-e2e" || found.Data[0].KeyID != key.KeyID {
		t.Fatalf("audit --txn: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cli("audit", "--run", "cli-e2e")
	if code != 0 || !strings.Contains(out, pis[0]) || !strings.Contains(out, "forwarded") {
		t.Fatalf("audit table: exit %d\n%s", code, out)
	}

	// The summary, for people and for scripts.
	code, out, _ = cli("summary", "--run", "cli-e2e")
	if code != 0 || !strings.Contains(out, key.KeyID) || !strings.Contains(out, "$2.00") || !strings.Contains(out, "$3.00") {
		t.Fatalf("summary table (want $2.00 spent, $3.00 remaining): exit %d\n%s", code, out)
	}
	code, out, _ = cli("keys", "--run", "cli-e2e", "--status", "active")
	if code != 0 || !strings.Contains(out, key.KeyID) || strings.Contains(out, key.VaultKey) {
		t.Fatalf("keys: exit %d\n%s", code, out)
	}

	// Revoke, then the next proxied call is refused.
	code, out, errOut = cli("revoke", key.KeyID)
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: exit %d\n%s\n%s", code, out, errOut)
	}
	_, err := createPI(stripeClient(n, key.VaultKey, ""), 100, "")
	stripeErr(t, err, http.StatusUnauthorized, "keybrake_key_revoked")

	// Exit codes: the API refusing is 1, a usage error 2, unreachable 3.
	if code, _, errOut = keybrakeCLI(t, n.url, "notTheToken", "keys"); code != 1 || !strings.Contains(errOut, "HTTP 401") {
		t.Errorf("wrong token: exit %d, %s", code, errOut)
	}
	if code, _, errOut = cli("summary"); code != 2 {
		t.Errorf("usage error: exit %d, %s", code, errOut)
	}
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort())
	if code, _, errOut = keybrakeCLI(t, dead, apiToken, "keys"); code != 3 || !strings.Contains(errOut, "cannot reach Keybrake") {
		t.Errorf("unreachable: exit %d, %s", code, errOut)
	}
}
