package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reachable tells whether something accepts TCP connections at addr.
func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestListenOnOneAddress: `make run` with KEYBRAKE_LISTEN=http://127.0.0.1:P
// listens on 127.0.0.1 only (scripts/run.sh derives KEYBRAKE_BIND, and
// Caddyfile.example binds it). 127.0.0.2 is loopback too (Linux routes all
// of 127/8 to lo), so a port open on every address answers there; this one
// must not. Without KEYBRAKE_BIND the port is open on every address.
func TestListenOnOneAddress(t *testing.T) {
	need(t, false)
	all, err := net.Listen("tcp", ":0") // every address, as Caddy without bind
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for c, err := all.Accept(); err == nil; c, err = all.Accept() {
			c.Close()
		}
	}()
	wildcard := reachable(fmt.Sprintf("127.0.0.2:%d", all.Addr().(*net.TCPAddr).Port))
	all.Close()
	if !wildcard {
		t.Skip("127.0.0.2 does not reach a port open on every address here")
	}
	dir := t.TempDir()
	port := freePort()
	cmd := exec.Command("bash", "../scripts/run.sh")
	cmd.Env = append(os.Environ(), fmt.Sprintf("KEYBRAKE_LISTEN=http://127.0.0.1:%d", port),
		"KEYBRAKE_ADMIN=unix/"+filepath.Join(dir, "admin.sock")+"|0600", "KEYBRAKE_LEDGER=sqlite:"+filepath.Join(dir, "k.db"),
		"KEYBRAKE_API_TOKEN=bindtest", "KEYBRAKE_BIND=", "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logPath := filepath.Join(dir, "run.log")
	logFile, _ := os.Create(logPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("make run log:\n%s", tail(string(b), 3000))
		}
	})
	if err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/vault/keys", port), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if reachable(fmt.Sprintf("127.0.0.2:%d", port)) {
		t.Fatalf("KEYBRAKE_LISTEN=http://127.0.0.1:%d is reachable on 127.0.0.2", port)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "listening on 127.0.0.1 only") {
		t.Errorf("make run does not say where it listens:\n%s", b)
	}
}
