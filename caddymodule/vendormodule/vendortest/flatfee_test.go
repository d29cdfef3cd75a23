package vendortest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The keybrake app, gate and key API; no vendor kind.
	_ "github.com/keybrake/keybrake/caddymodule"
	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

func init() {
	caddy.RegisterModule(FlatFee{})
}

// FlatFee is a vendor kind of this test: every POST costs Fee, and
// anything else is free.
type FlatFee struct {
	vendormodule.Base

	// SecretKey is the real secret, sent upstream as a bearer token.
	SecretKey string `json:"secret_key,omitempty"`
	// Fee is the price of one POST. Required.
	Fee money.Micros `json:"fee_usd,omitempty"`

	secret string
}

// CaddyModule returns the Caddy module information.
func (FlatFee) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: vendormodule.Namespace + ".flatfee", New: func() caddy.Module { return new(FlatFee) }}
}

// Provision expands the secret.
func (m *FlatFee) Provision(ctx caddy.Context) error {
	if err := m.Base.Provision(ctx); err != nil {
		return err
	}
	m.secret = m.Secret("secret_key", m.SecretKey)
	return nil
}

// Validate requires the fee.
func (m *FlatFee) Validate() error {
	if m.Fee <= 0 {
		return fmt.Errorf("fee is required")
	}
	return nil
}

// CaddyfileOptions implements vendormodule.Module.
func (m *FlatFee) CaddyfileOptions() []vendormodule.Option {
	return []vendormodule.Option{
		vendormodule.StringOption("secret_key", &m.SecretKey),
		vendormodule.USDOption("fee", &m.Fee),
	}
}

// UnmarshalCaddyfile reads a vendor block of kind flatfee.
//
// Syntax:
//
//	vendor <name> {
//		kind       flatfee
//		secret_key <secret>
//		fee        <usd>
//	}
func (m *FlatFee) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return vendormodule.UnmarshalBlock(d, m)
}

// Vendor implements vendormodule.Module.
func (m *FlatFee) Vendor(name string) (vendors.Vendor, error) {
	return &flatFeeVendor{name: name, fee: m.Fee, inject: vendors.InjectConfig{Secret: m.secret}}, nil
}

// flatFeeVendor is the vendors.Vendor of a FlatFee module.
type flatFeeVendor struct {
	name   string
	fee    money.Micros
	from   vendors.CredentialConfig
	inject vendors.InjectConfig
}

func (v *flatFeeVendor) Name() string { return v.name }

func (v *flatFeeVendor) Credential(r *http.Request) (string, bool) { return v.from.Extract(r) }

func (v *flatFeeVendor) Authorize(r *http.Request) error {
	return vendors.SwapCredential(r, v.from, v.inject)
}

func (v *flatFeeVendor) Estimate(r *http.Request, _ []byte) (vendors.Estimate, error) {
	if r.Method != http.MethodPost {
		return vendors.Estimate{Known: true}, nil
	}
	return vendors.Estimate{Cost: v.fee, Known: true}, nil
}

func (v *flatFeeVendor) Settle(_ *http.Request, status int, _ http.Header, _ []byte, est vendors.Estimate) vendors.Result {
	return vendors.Result{Decision: vendors.StatusDecision(status), Cost: est.Cost}
}

func (v *flatFeeVendor) WriteError(w http.ResponseWriter, e *vendors.Error) {
	vendors.WriteJSONError(w, e)
}

// Interface guards.
var (
	_ vendormodule.Module = (*FlatFee)(nil)
	_ caddy.Validator     = (*FlatFee)(nil)
	_ vendors.Vendor      = (*flatFeeVendor)(nil)
)

// TestVendorKindFromAnotherPackage: a vendor of kind flatfee, declared in
// a Caddyfile, adapts with its kind, loads in a running Caddy, and gates
// calls: each POST reserves the fee, the real secret replaces the vault key
// upstream, the call over the cap is refused with 429 in the vendor's
// format, and a vendor of the kind whose secret is unset answers 503 naming
// the variable to set.
func TestVendorKindFromAnotherPackage(t *testing.T) {
	var forwarded atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded.Add(1)
		if got := r.Header.Get("Authorization"); got != "Bearer real-flatfee-secret" {
			t.Errorf("upstream saw Authorization %q", got)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer upstream.Close()
	t.Setenv("KB_TEST_FLATFEE_SECRET", "real-flatfee-secret")
	t.Setenv("KB_TEST_FLATFEE_UNSET", "")

	dir := t.TempDir()
	addr := freeAddr(t)
	const token = "vendortestToken0123456789"
	input := fmt.Sprintf(`{
	admin off
	persist_config off
	storage file_system %[1]s
	keybrake {
		ledger sqlite:%[1]s/ledger.db
		api_token %[2]s
		vendor metered {
			kind flatfee
			secret_key {env.KB_TEST_FLATFEE_SECRET}
			fee 0.25
		}
		vendor unset {
			kind flatfee
			secret_key {env.KB_TEST_FLATFEE_UNSET}
			fee 1
		}
	}
}

http://%[3]s {
	handle /vault/* {
		keybrake_api
	}
	handle_path /metered/* {
		keybrake metered
		reverse_proxy %[4]s
	}
	handle_path /unset/* {
		keybrake unset
		reverse_proxy %[4]s
	}
}
`, filepath.ToSlash(dir), token, addr, upstream.URL)
	cfg, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(`"metered":{"fee_usd":0.25,"kind":"flatfee","secret_key":"{env.KB_TEST_FLATFEE_SECRET}"}`)) {
		t.Fatalf("adapted config has no flatfee vendor:\n%s", cfg)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = caddy.Stop() }()
	base := "http://" + addr

	var key struct {
		VaultKey string `json:"vault_key"`
	}
	status, body := call(t, "POST", base+"/vault/keys", token, `{"vendor":"metered","total_usd_cap":0.6,"expires_in":"1h",`+
		`"allowed_endpoints":["POST /charges"],"agent_run_label":"vendortest"}`)
	if status != http.StatusCreated || json.Unmarshal(body, &key) != nil || key.VaultKey == "" {
		t.Fatalf("issuing a key: %d %s", status, body)
	}
	for i := 1; i <= 2; i++ {
		if status, body := call(t, "POST", base+"/metered/charges", key.VaultKey, `{}`); status != http.StatusOK {
			t.Fatalf("charge %d: %d %s", i, status, body)
		}
	}
	// $0.50 spent of $0.60: a third $0.25 would pass the cap.
	status, body = call(t, "POST", base+"/metered/charges", key.VaultKey, `{}`)
	if status != http.StatusTooManyRequests || !strings.Contains(string(body), `"code":"keybrake_cap_hit"`) {
		t.Fatalf("charge over the cap: %d %s", status, body)
	}
	if n := forwarded.Load(); n != 2 {
		t.Fatalf("upstream got %d calls; want 2", n)
	}
	status, body = call(t, "POST", base+"/unset/charges", key.VaultKey, `{}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "set the environment variable KB_TEST_FLATFEE_UNSET") {
		t.Fatalf("vendor without its secret: %d %s", status, body)
	}
}

func call(t *testing.T, method, url, bearer, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// freeAddr is a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
