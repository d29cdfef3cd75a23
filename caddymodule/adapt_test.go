package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	// The vendor kinds, as keybrake.go builds them in.
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/declared"
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/resend"
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/stripe"
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/twilio"
)

var update = flag.Bool("update", false, "rewrite the expected JSON of testdata/caddyfile_adapt from what the Caddyfiles adapt to")

// goldenSeparator parts a .caddyfiletest file: the Caddyfile above it, the
// JSON it adapts to below, as in Caddy's caddytest/integration/caddyfile_adapt.
const goldenSeparator = "\n----------\n"

// readGolden returns the Caddyfile and the expected JSON of a test file.
func readGolden(t *testing.T, path string) (caddyfileText, wantJSON string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in, out, ok := strings.Cut(string(raw), goldenSeparator)
	if !ok {
		t.Fatalf("%s: no line of ten dashes between the Caddyfile and the JSON", path)
	}
	return in + "\n", strings.TrimSpace(out)
}

// adaptIndented adapts a Caddyfile and indents the JSON with tabs.
func adaptIndented(t *testing.T, input string) string {
	t.Helper()
	out, warnings, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(input), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapt warning: %s", w.String())
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// keybrakeApp is the keybrake app of an adapted config.
func keybrakeApp(t *testing.T, config string) string {
	t.Helper()
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatalf("adapted JSON: %v", err)
	}
	return string(cfg.Apps["keybrake"])
}

// goldenApp is the keybrake app's JSON that testdata/caddyfile_adapt/NAME
// adapts to.
func goldenApp(t *testing.T, name string) string {
	t.Helper()
	_, want := readGolden(t, filepath.Join("testdata", "caddyfile_adapt", name+".caddyfiletest"))
	return keybrakeApp(t, want)
}

// loadApp turns the keybrake app's JSON back into an App, as Caddy does.
func loadApp(t *testing.T, raw string) *App {
	t.Helper()
	app := new(App)
	if err := json.Unmarshal([]byte(raw), app); err != nil {
		t.Fatalf("unmarshalling %s: %v", raw, err)
	}
	return app
}

// provisionJSON loads the keybrake app's JSON and provisions it, as Caddy
// does; it opens no ledger.
func provisionJSON(t *testing.T, raw string) (*App, error) {
	t.Helper()
	app := loadApp(t, raw)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := app.Provision(ctx)
	if err == nil {
		t.Cleanup(func() { _ = app.Cleanup() })
	}
	return app, err
}

// TestCaddyfileAdapt: every testdata/caddyfile_adapt/*.caddyfiletest
// adapts to its JSON, and that JSON loads: its keybrake app provisions
// (with the secrets the test environment does not set left unconfigured).
// go test -run TestCaddyfileAdapt -update rewrites the JSON.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile_adapt", "*.caddyfiletest"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no adapt tests: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".caddyfiletest"), func(t *testing.T) {
			input, want := readGolden(t, path)
			got := adaptIndented(t, input)
			if *update {
				if err := os.WriteFile(path, []byte(strings.TrimSuffix(input, "\n")+goldenSeparator+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if got != want {
				t.Errorf("adapted JSON =\n%s\nwant\n%s", got, want)
			}
			if _, err := provisionJSON(t, keybrakeApp(t, got)); err != nil {
				t.Errorf("provisioning the keybrake app: %v", err)
			}
		})
	}
}
