package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// listeningTCPPorts lists the TCP ports pid listens on: the inodes of its
// socket descriptors, looked up among the LISTEN (0A) rows of
// /proc/net/tcp and tcp6.
func listeningTCPPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("reading the process's descriptors: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	if len(inodes) == 0 {
		t.Fatal("the process has no sockets at all: the check would prove nothing")
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				t.Fatalf("%s: port %q", table, hexPort)
			}
			ports = append(ports, int(p))
		}
		f.Close()
	}
	return ports
}

// TestExampleOpensNoTCPAdmin starts Caddyfile.example as a user would (no
// KEYBRAKE_ADMIN): the only TCP listener is the site; the admin endpoint
// is an owner-only unix socket through which reload and metrics work.
func TestExampleOpensNoTCPAdmin(t *testing.T) {
	need(t, false)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), exampleAdmin: true})
	site, _ := strconv.Atoi(n.url[strings.LastIndex(n.url, ":")+1:])
	ports := listeningTCPPorts(t, n.cmd.Process.Pid)
	if len(ports) != 1 || ports[0] != site {
		t.Fatalf("caddy listens on TCP ports %v; want only the site's %d", ports, site)
	}
	fi, err := os.Stat(n.admin)
	if err != nil {
		t.Fatalf("admin socket: %v", err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket mode %v; want an owner-only (0600) socket", fi.Mode())
	}
	if m := n.adminGet(t, "/metrics"); !strings.Contains(m, "caddy_") {
		t.Fatalf("no metrics on the admin socket:\n%.300s", m)
	}
	n.reload(t)
	if ports := listeningTCPPorts(t, n.cmd.Process.Pid); len(ports) != 1 || ports[0] != site {
		t.Fatalf("after reload caddy listens on TCP ports %v; want only %d", ports, site)
	}
}

// TestValidateAndAdaptTouchNoLedger: `caddy validate` and `caddy adapt` on
// Caddyfile.example, run in an empty directory with the default embedded
// ledger or pointed at a Postgres database, create no file and migrate
// nothing.
func TestValidateAndAdaptTouchNoLedger(t *testing.T) {
	need(t, false)
	ledgers := map[string]string{"default": ""}
	if env.pgDSN != "" {
		ledgers["postgres"] = freshDatabase(t)
	}
	example, _ := filepath.Abs("../Caddyfile.example")
	for name, dsn := range ledgers {
		for _, sub := range []string{"validate", "adapt"} {
			dir := t.TempDir()
			cmd := exec.Command(env.caddyBin, sub, "--config", example, "--adapter", "caddyfile")
			cmd.Dir = dir
			cmd.Env = []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"),
				"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "PATH=" + os.Getenv("PATH"),
				"KEYBRAKE_API_TOKEN=" + apiToken, "STRIPE_SECRET_KEY=" + realSecret}
			if dsn != "" {
				cmd.Env = append(cmd.Env, "KEYBRAKE_LEDGER="+dsn)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s (%s ledger): %v\n%s", sub, name, err, out)
			}
			var left []string
			_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Errorf("caddy %s (%s ledger) left files behind: %v", sub, name, left)
			}
			if dsn != "" {
				if tables := publicTables(t, dsn); len(tables) > 0 {
					t.Errorf("caddy %s migrated the Postgres ledger: tables %v", sub, tables)
				}
			}
		}
	}
}
