package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestReloadUnderLoad: `caddy reload` while a run is charging. Every charge
// either goes through or is refused by the cap (none is lost to the
// reload), the ledger adds up exactly, and the reload reuses the open
// ledger instead of opening a second one.
func TestReloadUnderLoad(t *testing.T) {
	need(t, true)
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: freshDatabase(t), env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	key := issueKey(t, n, map[string]any{
		"vendor":            "stripe",
		"total_usd_cap":     50,
		"allowed_endpoints": []string{"POST /v1/payment_intents"},
		"agent_run_label":   "reload",
	})
	// $1 charges on a $50 cap, from 8 workers, until both reloads are done
	// and then 5 more each; bounded by 400 charges per worker.
	const workers = 8
	var ok, capped, total atomic.Int64
	var reloaded atomic.Bool
	var wg sync.WaitGroup
	started := make(chan struct{})
	var once sync.Once
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := stripeClient(n, key.VaultKey, "")
			after := 0
			for j := 0; j < 400 && after < 5; j++ {
				if reloaded.Load() {
					after++
				}
				_, err := createPI(c, 100, "")
				total.Add(1)
				once.Do(func() { close(started) })
				switch {
				case err == nil:
					ok.Add(1)
				case strings.Contains(err.Error(), "keybrake_cap_hit"):
					capped.Add(1)
				default:
					t.Errorf("charge during reload: %v", err)
				}
			}
		}()
	}
	<-started
	n.reload(t)
	n.reload(t)
	reloaded.Store(true)
	wg.Wait()

	if ok.Load() != 50 || capped.Load() != total.Load()-50 {
		t.Fatalf("%d of %d charges went through and %d hit the cap; want 50 and the rest", ok.Load(), total.Load(), capped.Load())
	}
	t.Logf("%d charges across two reloads", total.Load())
	if got := rec.count("POST", "/v1/payment_intents"); got != 50 {
		t.Fatalf("upstream saw %d charges; want 50", got)
	}
	if k := getKey(t, n, key.KeyID); k.Spent.String() != "50" || k.Reserved.String() != "0" {
		t.Fatalf("key after reloads = %+v", k)
	}
	if loads := strings.Count(n.log(t), `"msg":"load complete"`); loads != 2 {
		t.Fatalf("caddy logged %d completed reloads; want 2", loads)
	}
	if opened := strings.Count(n.log(t), `"msg":"ledger opened"`); opened != 1 {
		t.Fatalf("the ledger was opened %d times across two reloads; want once", opened)
	}
}

// TestReloadFromEmptyEnvironmentRefused: `caddy reload` from a shell with
// none of Keybrake's variables (a second terminal) adapts Caddyfile.example
// with the defaults: the site on :8080 and Stripe at api.stripe.com.
// pin_env makes the running Caddy refuse that config, saying why; the
// listen address and the upstream are unchanged, and a reload with Caddy's
// own environment still works.
func TestReloadFromEmptyEnvironmentRefused(t *testing.T) {
	need(t, false)
	rec := newRecorder(t, env.stripeMock)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{"STRIPE_API_BASE": rec.URL}})
	key := issueKey(t, n, map[string]any{"vendor": "stripe", "total_usd_cap": 50,
		"allowed_endpoints": []string{"POST /v1/payment_intents"}, "agent_run_label": "reload-env"})

	cmd := exec.Command(env.caddyBin, "reload", "--config", n.config, "--adapter", "caddyfile",
		"--address", "unix/"+n.admin, "--force")
	cmd.Dir = filepath.Dir(n.admin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a reload from an empty environment was accepted:\n%s", out)
	}
	for _, want := range []string{"pin_env", "KEYBRAKE_LISTEN (unset in this config", "STRIPE_API_BASE (unset in this config", "restart Caddy"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refused reload does not say %q:\n%s", want, out)
		}
	}
	// Same address, same upstream.
	if _, err := createPI(stripeClient(n, key.VaultKey, ""), 100, ""); err != nil {
		t.Fatalf("a charge after the refused reload: %v", err)
	}
	if got := rec.count("POST", "/v1/payment_intents"); got != 1 {
		t.Fatalf("the test upstream saw %d charges; want 1 (the upstream moved?)", got)
	}
	// Caddy 2.11 starts a config's admin endpoint before it provisions the
	// apps and keeps it when the config is refused: the refused config's
	// default admin socket (keybrake-admin.sock in Caddy's working
	// directory) is then where the admin endpoint is. A reload with Caddy's
	// own environment, through whichever socket answers, moves it back.
	started := n.admin
	if _, err := os.Stat(started); err != nil {
		n.admin = filepath.Join(filepath.Dir(started), "keybrake-admin.sock")
	}
	n.reload(t)
	n.admin = started
	if _, err := os.Stat(started); err != nil {
		t.Fatalf("the admin endpoint is not back at %s: %v", started, err)
	}
	if _, err := createPI(stripeClient(n, key.VaultKey, ""), 100, ""); err != nil || rec.count("POST", "/v1/payment_intents") != 2 {
		t.Fatalf("after a reload with Caddy's own environment: %v, %d charges upstream", err, rec.count("POST", "/v1/payment_intents"))
	}
}
