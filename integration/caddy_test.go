package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// node is one running Caddy with the Keybrake modules.
type node struct {
	url     string // http://127.0.0.1:PORT
	admin   string // path of Caddy's admin socket (owner-only unix socket)
	logPath string
	cmd     *exec.Cmd
	config  string // the Caddyfile it was started with
	stopped func() // stops the process; safe to call twice
}

// nodeConfig is what a node is started with.
type nodeConfig struct {
	caddyfile string // path; default ../Caddyfile.example
	ledger    string // KEYBRAKE_LEDGER
	env       map[string]string
	// exampleAdmin leaves KEYBRAKE_ADMIN unset, as a user would, so the
	// Caddyfile's own default admin endpoint is used.
	exampleAdmin bool
}

const (
	apiToken   = "testApiToken0123456789"
	realSecret = "sk_test_RealSecret4242424242424242"
)

// startNode runs bin/caddy with cfg and stops it when the test ends.
func startNode(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	dir := t.TempDir()
	if cfg.caddyfile == "" {
		cfg.caddyfile = "../Caddyfile.example"
	}
	caddyfile, _ := filepath.Abs(cfg.caddyfile)
	port := freePort()
	n := &node{url: fmt.Sprintf("http://127.0.0.1:%d", port), admin: filepath.Join(dir, "admin.sock"),
		logPath: filepath.Join(dir, "caddy.log")}
	logFile, err := os.Create(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	n.config = caddyfile
	n.cmd = exec.Command(env.caddyBin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	n.cmd.Dir = dir
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	vars := map[string]string{
		"HOME":               dir,
		"XDG_DATA_HOME":      filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME":    filepath.Join(dir, "config"),
		"PATH":               os.Getenv("PATH"),
		"KEYBRAKE_LISTEN":    fmt.Sprintf(":%d", port),
		"KEYBRAKE_ADMIN":     "unix/admin.sock|0600", // in dir, the working directory
		"KEYBRAKE_LEDGER":    cfg.ledger,
		"KEYBRAKE_API_TOKEN": apiToken,
		"STRIPE_SECRET_KEY":  realSecret,
	}
	if cfg.exampleAdmin {
		delete(vars, "KEYBRAKE_ADMIN")
		n.admin = filepath.Join(dir, "keybrake-admin.sock")
	}
	for k, v := range cfg.env {
		vars[k] = v
	}
	for k, v := range vars {
		n.cmd.Env = append(n.cmd.Env, k+"="+v)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(exited) }()
	n.stopped = sync.OnceFunc(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-exited
		}
	})
	t.Cleanup(func() {
		n.stopped()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(n.logPath)
			t.Logf("caddy log (%s):\n%s", n.logPath, tail(string(b), 4000))
		}
	})
	if err := waitHTTP(n.url+"/vault/keys", 60*time.Second); err != nil {
		b, _ := os.ReadFile(n.logPath)
		t.Fatalf("caddy did not start: %v\n%s", err, tail(string(b), 4000))
	}
	return n
}

// stop stops the node (SIGTERM, as Ctrl-C does) and waits for it to exit.
func (n *node) stop() { n.stopped() }

// log returns everything the node has logged so far.
func (n *node) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// sqliteLedger returns an embedded ledger DSN in a test's temp dir.
func sqliteLedger(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "ledger.db")
}

func contains(haystack, needle string) bool {
	return needle != "" && strings.Contains(haystack, needle)
}

// adminGet GETs path from Caddy's admin endpoint over its unix socket.
func (n *node) adminGet(t *testing.T, path string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", n.admin)
		}}}
	resp, err := c.Get("http://localhost" + path)
	if err != nil {
		t.Fatalf("admin GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// reload runs `caddy reload` against the node with the environment it was
// started with (the Caddyfile's {$…} are read by the reloading command).
func (n *node) reload(t *testing.T) {
	t.Helper()
	cmd := exec.Command(env.caddyBin, "reload", "--config", n.config, "--adapter", "caddyfile",
		"--address", "unix/"+n.admin, "--force")
	cmd.Env = n.cmd.Env
	cmd.Dir = n.cmd.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
}
