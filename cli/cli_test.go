package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/keyapi"
	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
	"github.com/keybrake/keybrake/money"
)

const testToken = "cliTestToken123"

// server is the real key API on an embedded ledger, over loopback HTTP.
func server(t *testing.T) string {
	t.Helper()
	url, _ := serverStore(t)
	return url
}

// serverStore is server with its ledger, for tests that make calls.
func serverStore(t *testing.T) (string, ledger.Store) {
	t.Helper()
	store, err := ledger.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "l.db"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h, err := keyapi.New(keyapi.Config{Store: store, Tokens: []string{testToken}, Vendors: []string{"stripe"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, store
}

// run runs the CLI and returns its exit code, stdout and stderr.
func run(t *testing.T, url string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, Config{URL: url, Token: testToken, Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

func TestIssueListSummaryRevoke(t *testing.T) {
	url := server(t)
	code, out, errOut := run(t, url, "issue", "--vendor", "stripe", "--total-usd-cap", "12.5",
		"--endpoint", "POST /v1/payment_intents", "--run", "cli/run", "--json")
	if code != ExitOK {
		t.Fatalf("issue: exit %d: %s", code, errOut)
	}
	var k keyView
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.KeyID == "" || k.VaultKey == "" {
		t.Fatalf("issue --json = %q (%v)", out, err)
	}

	code, out, _ = run(t, url, "issue", "--vendor", "stripe", "--daily-usd-cap", "3", "--endpoint", "POST /v1/payment_intents")
	if code != ExitOK || !strings.Contains(out, "vault key (shown once") || !strings.Contains(out, "$3.00") {
		t.Fatalf("issue table: exit %d\n%s", code, out)
	}

	code, out, _ = run(t, url, "keys", "--run", "cli/run")
	if code != ExitOK || !strings.Contains(out, k.KeyID) || !strings.Contains(out, "$12.50") || strings.Contains(out, k.VaultKey) {
		t.Fatalf("keys: exit %d\n%s", code, out)
	}
	if !strings.HasPrefix(out, "KEY ID") {
		t.Errorf("keys table has no header:\n%s", out)
	}

	code, out, _ = run(t, url, "summary", "--run", "cli/run")
	if code != ExitOK || !strings.Contains(out, "run cli/run") || !strings.Contains(out, k.KeyID) || !strings.Contains(out, "$12.50") {
		t.Fatalf("summary: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, url, "summary", "--day", "2026-11-29", "--csv")
	if code != ExitOK || !strings.HasPrefix(out, "agent_run_label,vendor,endpoint,outcome") {
		t.Fatalf("summary --csv: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, url, "audit", "--txn", "pi_nothing")
	if code != ExitOK || strings.Count(out, "\n") != 1 {
		t.Fatalf("audit --txn: exit %d\n%s", code, out)
	}

	code, out, _ = run(t, url, "revoke", k.KeyID)
	if code != ExitOK || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}
	code, _, errOut = run(t, url, "revoke", "vkNoSuchKey123")
	if code != ExitAPIError || !strings.Contains(errOut, "HTTP 404") {
		t.Fatalf("revoke unknown: exit %d\n%s", code, errOut)
	}
}

// TestMissingEndpoints: against a Keybrake that predates an endpoint (it
// answers 404 or 405 with no API error), a command prints the API's answer
// and says the server lacks it, with exit code 1.
func TestMissingEndpoints(t *testing.T) {
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(old.Close)
	for _, args := range [][]string{
		{"resolve", "call123", "--release", "--reason", "vendor refunded"},
		{"patch", "vkSomeKey123", "--total-usd-cap", "5"},
		{"tokens"},
		{"revoke", "--run", "cli/run"},
	} {
		code, out, errOut := run(t, old.URL, args...)
		if code != ExitAPIError || out != "" || !strings.Contains(errOut, "this Keybrake does not serve") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

func TestExitCodes(t *testing.T) {
	url := server(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, ExitUsage, "usage: caddy keybrake <command>"},
		{[]string{"help"}, ExitOK, "commands:"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"issue", "--vendor", "stripe"}, ExitUsage, "--total-usd-cap"},
		{[]string{"issue", "--vendor", "stripe", "--total-usd-cap", "1.1234567"}, ExitUsage, "at most 6 decimals"},
		{[]string{"issue", "--bogus"}, ExitUsage, "flag provided but not defined"},
		{[]string{"revoke"}, ExitUsage, "give a KEY_ID or --run LABEL"},
		{[]string{"summary"}, ExitUsage, "--run LABEL, --day"},
		{[]string{"summary", "--day", "tomorrow"}, ExitAPIError, "day must be a UTC date"},
		{[]string{"keys", "-h"}, ExitOK, "--status"},
		{[]string{"audit", "--csv", "--json"}, ExitUsage, "--csv and --json"},
		{[]string{"summary", "--run", "x", "--csv", "--json"}, ExitUsage, "--csv and --json"},
		{[]string{"audit", "--since", "yesterday"}, ExitUsage, "how long ago (90m, 1h, 7d)"},
		{[]string{"revoke", "--run", "no-such-run"}, ExitAPIError, `no active key of run "no-such-run"`},
	} {
		code, out, errOut := run(t, url, tc.args...)
		if tc.code == ExitOK { // asked-for help is the answer: stdout
			errOut = out
		}
		if tc.args != nil && slices.Contains(tc.args, "--json") { // errors as JSON, on stdout
			var e struct {
				Error struct{ Code, Message string }
			}
			if json.Unmarshal([]byte(out), &e) != nil || e.Error.Code == "" {
				t.Errorf("%v: --json error is not JSON on stdout: %q", tc.args, out)
			}
			errOut = e.Error.Message
		}
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d (want %d), output %q (want %q)", tc.args, code, tc.code, errOut, tc.want)
		}
	}
	for _, since := range []string{"1h", "7d", "2026-11-29T10:00:00Z"} {
		if code, _, errOut := run(t, url, "audit", "--since", since); code != ExitOK {
			t.Errorf("audit --since %s: exit %d: %s", since, code, errOut)
		}
	}
	code, out, _ := run(t, url, "summary", "--day", "tomorrow", "--json")
	var apiErr struct {
		Error struct{ Code, Message string }
	}
	if code != ExitAPIError || json.Unmarshal([]byte(out), &apiErr) != nil || apiErr.Error.Code != "parameter_invalid" {
		t.Errorf("summary --json with a bad day: exit %d, stdout %q; want the API's error as JSON", code, out)
	}

	// A refused token is the API refusing: 1, with a hint, and the token is
	// never printed.
	var outBuf, errOut bytes.Buffer
	code = Main([]string{"keys"}, Config{URL: url, Token: "wrongTokenValue", Stdout: &outBuf, Stderr: &errOut})
	if code != ExitAPIError || !strings.Contains(errOut.String(), "check KEYBRAKE_API_TOKEN") || strings.Contains(errOut.String(), "wrongTokenValue") {
		t.Errorf("wrong token: exit %d, %q", code, errOut.String())
	}

	// Nothing listening: 3.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	code, _, msg := run(t, dead, "keys")
	if code != ExitUnreachable || !strings.Contains(msg, "cannot reach Keybrake at "+dead) {
		t.Errorf("unreachable: exit %d, %q", code, msg)
	}
}

func TestDollars(t *testing.T) {
	for in, want := range map[string]string{"0": "$0.00", "12.5": "$12.50", "0.000001": "$0.000001", "": "-", "100": "$100.00"} {
		if got := dollars(json.Number(in)); got != want {
			t.Errorf("dollars(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestTokensPatchAndRunRevoke: tokens create/list/revoke, patch and revoke
// --run against the real key API; an issuer token made by the CLI issues a
// key inside its policy and is refused outside it.
func TestTokensPatchAndRunRevoke(t *testing.T) {
	url := server(t)
	code, out, errOut := run(t, url, "tokens", "create", "--name", "windmill", "--role", "issuer",
		"--policy", `{"vendors":["stripe"],"max_key_usd":100,"run_label_prefix":"wm/"}`, "--json")
	if code != ExitOK {
		t.Fatalf("tokens create: exit %d: %s", code, errOut)
	}
	var tk tokenView
	if err := json.Unmarshal([]byte(out), &tk); err != nil || tk.TokenID == "" || tk.Token == "" || tk.Role != "issuer" {
		t.Fatalf("tokens create --json = %q (%v)", out, err)
	}
	code, out, _ = run(t, url, "tokens")
	if code != ExitOK || !strings.Contains(out, tk.TokenID) || !strings.Contains(out, "max_key_usd") || strings.Contains(out, tk.Token) {
		t.Fatalf("tokens: exit %d\n%s", code, out)
	}

	as := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		c := Main(args, Config{URL: url, Token: tk.Token, Stdout: &o, Stderr: &e})
		return c, o.String(), e.String()
	}
	code, out, errOut = as("issue", "--vendor", "stripe", "--total-usd-cap", "10", "--endpoint", "POST /v1/payment_intents", "--run", "wm/1", "--json")
	if code != ExitOK {
		t.Fatalf("issue as issuer: exit %d: %s", code, errOut)
	}
	var k keyView
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = as("issue", "--vendor", "stripe", "--total-usd-cap", "101", "--endpoint", "POST /v1/payment_intents", "--run", "wm/1")
	if code != ExitAPIError || !strings.Contains(errOut, "policy_violation") || !strings.Contains(errOut, "max_key_usd $100.00") {
		t.Fatalf("issue above max_key_usd: exit %d: %s", code, errOut)
	}

	code, out, errOut = as("patch", k.KeyID, "--total-usd-cap", "20", "--expires-in", "30m")
	if code != ExitOK || !strings.Contains(out, "$20.00") {
		t.Fatalf("patch: exit %d: %s%s", code, out, errOut)
	}
	code, out, _ = run(t, url, "revoke", "--run", "wm/1")
	if code != ExitOK || !strings.Contains(out, "revoked 1 key(s) of run wm/1") {
		t.Fatalf("revoke --run: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, url, "keys", "--run", "wm/1")
	if code != ExitOK || !strings.Contains(out, "revoked") {
		t.Fatalf("keys after revoke --run: exit %d\n%s", code, out)
	}

	code, out, _ = run(t, url, "tokens", "revoke", tk.TokenID, "--revoke-keys")
	if code != ExitOK || !strings.Contains(out, "revoked token "+tk.TokenID) {
		t.Fatalf("tokens revoke: exit %d\n%s", code, out)
	}
	if code, _, errOut = as("keys"); code != ExitAPIError || !strings.Contains(errOut, "HTTP 401") {
		t.Fatalf("a revoked token: exit %d: %s", code, errOut)
	}
}

// TestResolve: the bootstrap admin settles one unknown call and releases
// another through the CLI; the audit shows who and why.
func TestResolve(t *testing.T) {
	url, store := serverStore(t)
	code, out, errOut := run(t, url, "issue", "--vendor", "stripe", "--total-usd-cap", "20",
		"--endpoint", "POST /v1/payment_intents", "--run", "cli/resolve", "--json")
	var k keyView
	if code != ExitOK || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("issue: exit %d: %s", code, errOut)
	}
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"clCliResolve0000000001", "clCliResolve0000000002"} {
		if _, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: id, KeyID: k.KeyID, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: 5 * money.PerDollar, Now: now}); err != nil {
			t.Fatal(err)
		}
		if err := store.MarkUnknown(ctx, id, ledger.Settlement{StatusCode: 502, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut = run(t, url, "resolve", "clCliResolve0000000001", "--cost-usd", "5", "--reason", "seen in Stripe")
	if code != ExitOK || !strings.Contains(out, "clCliResolve0000000001") || !strings.Contains(out, "$5.00") || !strings.Contains(out, "settled") {
		t.Fatalf("resolve --cost-usd: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = run(t, url, "resolve", "clCliResolve0000000002", "--release", "--reason", "not in Stripe", "--json")
	var c map[string]any
	if code != ExitOK || json.Unmarshal([]byte(out), &c) != nil || c["cost_state"] != "released" || c["resolved_by"] != "bootstrap" {
		t.Fatalf("resolve --release --json: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = run(t, url, "resolve", "clCliResolve0000000002", "--release", "--reason", "again")
	if code != ExitAPIError || !strings.Contains(errOut, "HTTP 409") {
		t.Fatalf("resolve twice: exit %d\n%s", code, errOut)
	}
	u, err := store.GetKey(ctx, k.KeyID, time.Now())
	if err != nil || u.Spent != 5*money.PerDollar || u.Reserved != 0 {
		t.Fatalf("usage = %+v (%v); want $5 spent, nothing reserved", u, err)
	}
}
