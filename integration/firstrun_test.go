package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The first five minutes of a new user (issue 11): each trap that can be
// tested without a person.

// TestMakeRebuildsOnlyOnChange: bin/caddy is a file target that depends on
// the Go sources, so `make run` builds once and then only after a change;
// `make clean` keeps the ledger.
func TestMakeRebuildsOnlyOnChange(t *testing.T) {
	needTool(t, "make")
	makefile, _ := filepath.Abs("../Makefile")
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"go.mod", "go.sum", "keybrake.go", "gate/serve.go", "keyapi/ui/app.js", "bin/caddy"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if f != "bin/caddy" {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	dryRun := func(target string) string {
		out, _ := exec.Command("make", "-n", "-C", dir, "-f", makefile, target).CombinedOutput()
		return string(out)
	}
	if out := dryRun("run"); strings.Contains(out, "xcaddy") || !strings.Contains(out, "scripts/run.sh") {
		t.Errorf("make run with an up-to-date bin/caddy would run:\n%s\nwant only scripts/run.sh", out)
	}
	future := time.Now().Add(time.Hour)
	for _, f := range []string{"gate/serve.go", "keyapi/ui/app.js"} {
		if err := os.Chtimes(filepath.Join(dir, f), future, future); err != nil {
			t.Fatal(err)
		}
		if out := dryRun("run"); !strings.Contains(out, "xcaddy") || !strings.Contains(out, "one") && !strings.Contains(out, "once") {
			t.Errorf("make run after %s changed would not rebuild, or not say the build is once:\n%s", f, out)
		}
		_ = os.Chtimes(filepath.Join(dir, f), old, old)
	}
	if out := dryRun("clean"); strings.Contains(out, "keybrake.db") {
		t.Errorf("make clean would delete the ledger:\n%s", out)
	}
}

// runScript runs scripts/run.sh with env added, until it exits or its
// output contains until (then it is stopped); it returns the output and
// the exit error.
// lockedBuffer is a bytes.Buffer a command writes to while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func runScript(t *testing.T, env map[string]string, until string) (string, error) {
	t.Helper()
	root, _ := filepath.Abs("..")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts/run.sh"))
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			return out.String(), err
		case <-time.After(100 * time.Millisecond):
			if until != "" && strings.Contains(out.String(), until) {
				_ = cmd.Process.Signal(os.Interrupt)
				<-done
				return out.String(), nil
			}
		case <-ctx.Done():
			t.Fatalf("run.sh did not finish:\n%s", out.String())
		}
	}
}

// TestRunRefusesTakenPorts: a second `make run` refuses to start while the
// first holds the site or admin port, and says how to stop the first.
func TestRunRefusesTakenPorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	for name, env := range map[string]map[string]string{
		"site":  {"KEYBRAKE_LISTEN": fmt.Sprintf(":%d", taken), "KEYBRAKE_ADMIN": fmt.Sprintf("localhost:%d", freePort())},
		"admin": {"KEYBRAKE_LISTEN": fmt.Sprintf(":%d", freePort()), "KEYBRAKE_ADMIN": fmt.Sprintf("localhost:%d", taken)},
	} {
		env["KEYBRAKE_LEDGER"] = sqliteLedger(t)
		out, err := runScript(t, env, "")
		if err == nil {
			t.Errorf("%s port taken: run.sh started anyway:\n%s", name, out)
		}
		if !strings.Contains(out, fmt.Sprintf("port %d is already in use", taken)) || !strings.Contains(out, "Ctrl-C") {
			t.Errorf("%s port taken: run.sh said\n%s\nwant the port and how to stop the other (Ctrl-C)", name, out)
		}
	}
}

// TestRunRefusesALiveAdminSocket: the example's admin endpoint is a unix
// socket; a second `make run` from the same directory finds the first's
// socket alive and refuses, saying how to stop the first.
func TestRunRefusesALiveAdminSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) })}
	go srv.Serve(ln)
	defer srv.Close()
	out, err := runScript(t, map[string]string{"KEYBRAKE_LISTEN": fmt.Sprintf(":%d", freePort()),
		"KEYBRAKE_ADMIN": "unix/" + sock + "|0600", "KEYBRAKE_LEDGER": sqliteLedger(t)}, "")
	if err == nil {
		t.Errorf("admin socket in use: run.sh started anyway:\n%s", out)
	}
	if !strings.Contains(out, "admin socket "+sock+" is in use") || !strings.Contains(out, "Ctrl-C") {
		t.Errorf("admin socket in use: run.sh said\n%s\nwant the socket and how to stop the other (Ctrl-C)", out)
	}
}

// TestRunExplainsHTTPSForAnIP: KEYBRAKE_LISTEN=127.0.0.1:PORT is served
// over HTTPS by Caddy's rule for addresses with a host; run.sh says so and
// shows the http:// form, which then serves plain HTTP.
func TestRunExplainsHTTPSForAnIP(t *testing.T) {
	need(t, false)
	port := freePort()
	env := map[string]string{
		"KEYBRAKE_LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "KEYBRAKE_ADMIN": fmt.Sprintf("localhost:%d", freePort()),
		"KEYBRAKE_LEDGER": sqliteLedger(t),
	}
	out, _ := runScript(t, env, "Stop it with Ctrl-C")
	if !strings.Contains(out, "HTTPS") || !strings.Contains(out, fmt.Sprintf("KEYBRAKE_LISTEN=http://127.0.0.1:%d", port)) {
		t.Errorf("run.sh said\n%s\nwant a note that this is HTTPS and the http:// form", out)
	}
	// The http:// form: plain HTTP on that address.
	port = freePort()
	env["KEYBRAKE_LISTEN"] = fmt.Sprintf("http://127.0.0.1:%d", port)
	env["KEYBRAKE_ADMIN"] = fmt.Sprintf("localhost:%d", freePort())
	root, _ := filepath.Abs("..")
	cmd := exec.Command(filepath.Join(root, "scripts/run.sh"))
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	if err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/vault/keys", port), 60*time.Second); err != nil {
		t.Fatalf("http:// form not serving plain HTTP: %v\n%s", err, log.String())
	}
	if strings.Contains(log.String(), "serves it\nover HTTPS") {
		t.Errorf("run.sh warned about HTTPS for an http:// address:\n%s", log.String())
	}
}

// TestStartIsQuietAndUnsetSecretNamed: no "Unnecessary header_up" warning
// on start, and a vendor whose secret is unset answers 503 naming the
// environment variable to set.
func TestStartIsQuietAndUnsetSecretNamed(t *testing.T) {
	need(t, false)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_SECRET_KEY": ""}})
	key := issueKey(t, n, map[string]any{
		"vendor": "stripe", "total_usd_cap": 1, "allowed_endpoints": []string{"POST /v1/payment_intents"},
	})
	req, _ := http.NewRequest("POST", n.url+"/v1/payment_intents", strings.NewReader("amount=100&currency=usd"))
	req.SetBasicAuth(key.VaultKey, "")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(raw, &body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Error.Message, "environment variable STRIPE_SECRET_KEY") {
		t.Errorf("unset secret: %d %s; want 503 naming STRIPE_SECRET_KEY", resp.StatusCode, raw)
	}
	if log := n.log(t); strings.Contains(log, "Unnecessary header_up") {
		t.Errorf("start logged an Unnecessary header_up warning:\n%s", tail(log, 2000))
	}
}

// TestDeployCaddyfileAdapts: the deployment recipe's Caddyfile adapts with
// the real binary, serves the host name (so Caddy gets it a certificate)
// and keeps the admin endpoint off TCP.
func TestDeployCaddyfileAdapts(t *testing.T) {
	need(t, false)
	root, _ := filepath.Abs("..")
	cmd := exec.Command(env.caddyBin, "adapt", "--config", filepath.Join(root, "examples/deploy/Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "KEYBRAKE_HOST=keybrake.example.com", "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, stderr.String())
	}
	var cfg struct {
		Admin struct {
			Listen string `json:"listen"`
		} `json:"admin"`
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
					Routes []struct {
						Match []struct {
							Host []string `json:"host"`
						} `json:"match"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
			Keybrake map[string]any `json:"keybrake"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.Admin.Listen, "unix/") {
		t.Errorf("admin listens on %q; want a unix socket", cfg.Admin.Listen)
	}
	found := false
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			for _, m := range r.Match {
				if len(m.Host) == 1 && m.Host[0] == "keybrake.example.com" && strings.Contains(strings.Join(srv.Listen, ","), ":443") {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("no HTTPS server for keybrake.example.com in\n%s", out)
	}
	if cfg.Apps.Keybrake["webhooks"] == nil || cfg.Apps.Keybrake["vendors"] == nil {
		t.Errorf("keybrake app %v; want vendors and a webhook", cfg.Apps.Keybrake)
	}
}

// TestReadmeLinksStayInTheRepo: every link in the README and in docs/ is a
// file of the repository (a user has nothing else), and the README keeps
// the newcomer's two set-up commands.
func TestReadmeLinksStayInTheRepo(t *testing.T) {
	root, _ := filepath.Abs("..")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)|<(https?://[^>]+)>`)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1] + m[2]
			if strings.HasPrefix(target, "http://localhost") || strings.HasPrefix(target, "#") {
				continue
			}
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				if filepath.Base(f) == "README.md" {
					t.Errorf("README links outside the repository: %s", target)
				}
				continue
			}
			path := strings.SplitN(target, "#", 2)[0]
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), path)); err != nil {
				t.Errorf("%s links to %s, which is not in the repository", filepath.Base(f), target)
			}
		}
	}
	readme, _ := os.ReadFile(filepath.Join(root, "README.md"))
	setup := strings.SplitN(strings.SplitN(string(readme), "## Set up", 2)[1], "\n## ", 2)[0]
	var cmds []string
	for _, block := range strings.Split(setup, "```sh\n")[1:] {
		cmds = append(cmds, strings.TrimSpace(strings.SplitN(block, "```", 2)[0]))
	}
	if strings.Join(cmds, "|") != "make run|make test" {
		t.Errorf("README set-up commands %q; want exactly make run and make test", cmds)
	}
}
