package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env is what every test needs, found once in TestMain.
var env struct {
	caddyBin   string
	pgDSN      string
	stripeMock string // base URL
	skip       string // why the end-to-end tests cannot run
}

func TestMain(m *testing.M) {
	code := func() int {
		stop := setUp()
		defer stop()
		return m.Run()
	}()
	os.Exit(code)
}

func setUp() (stop func()) {
	stop = func() {}
	env.caddyBin = os.Getenv("KEYBRAKE_CADDY_BIN")
	if env.caddyBin == "" {
		env.caddyBin, _ = filepath.Abs("../bin/caddy")
	}
	if _, err := os.Stat(env.caddyBin); err != nil {
		env.skip = "no Caddy binary at " + env.caddyBin + " (run make build)"
		return stop
	}
	env.pgDSN = os.Getenv("KEYBRAKE_TEST_PG_DSN")
	env.stripeMock = os.Getenv("KEYBRAKE_STRIPE_MOCK_URL")
	if env.stripeMock == "" {
		url, kill, err := startStripeMock()
		if err != nil {
			env.skip = "no stripe-mock: " + err.Error()
			return stop
		}
		env.stripeMock, stop = url, kill
	}
	return stop
}

// need skips (or, in CI, fails) a test whose services are missing.
func need(t *testing.T, postgres bool) {
	t.Helper()
	why := env.skip
	if why == "" && postgres && env.pgDSN == "" {
		why = "KEYBRAKE_TEST_PG_DSN is not set"
	}
	if why == "" {
		return
	}
	if os.Getenv("KEYBRAKE_REQUIRE_E2E") == "1" {
		t.Fatalf("end-to-end services missing: %s", why)
	}
	t.Skipf("skipping end-to-end test: %s", why)
}

// startStripeMock runs stripe-mock on a free loopback port.
func startStripeMock() (string, func(), error) {
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock")
		if _, err := os.Stat(bin); err != nil {
			return "", nil, fmt.Errorf("stripe-mock not in PATH nor GOPATH/bin")
		}
	}
	port := freePort()
	cmd := exec.Command(bin, "-http-port", fmt.Sprint(port), "-https-port", fmt.Sprint(freePort()))
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	kill := func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }
	if err := waitHTTP(url+"/v1/customers", 30*time.Second); err != nil {
		kill()
		return "", nil, err
	}
	return url, kill, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitHTTP polls url until anything answers, bounded by timeout.
func waitHTTP(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s: %w", url, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
