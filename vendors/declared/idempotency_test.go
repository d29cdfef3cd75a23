package declared

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/vendors"
)

// Finding 1: a declared vendor gets free replays only when its
// declaration says it honours an idempotency header.
func TestDeclaredIdempotency(t *testing.T) {
	plain, err := New(Config{Name: "x", Inject: vendors.InjectConfig{Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	if idem := plain.Idempotency(); idem.Honours(http.MethodPost, "/emails") || idem.Header != "" {
		t.Errorf("undeclared vendor honours %+v", idem)
	}

	var cfg Config
	raw := `{"name":"acme","inject":{"secret":"s"},"error_format":"stripe",
		"idempotency":{"header":"x-idempotency-key","window":"24h","scope_headers":["x-account"]}}`
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	idem := v.Idempotency()
	if idem.Header != "X-Idempotency-Key" || idem.Window != 24*time.Hour || !idem.Honours("POST", "/emails") || idem.Honours("PUT", "/x") ||
		len(idem.ScopeHeaders) != 1 || idem.ScopeHeaders[0] != "X-Account" {
		t.Errorf("declared idempotency %+v", idem)
	}
	if idem.Mismatch.Status != 400 || idem.Mismatch.Type != "idempotency_error" || idem.InFlight.Status != 409 || !idem.InFlight.Retryable {
		t.Errorf("stripe-format refusals %+v / %+v", idem.Mismatch, idem.InFlight)
	}

	// Nanoseconds, as the Caddyfile adapter writes them; methods given.
	cfg = Config{}
	raw = `{"name":"acme","inject":{"secret":"s"},"idempotency":{"header":"Idempotency-Key","methods":["POST","PUT"],"window":3600000000000}}`
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	v, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	idem = v.Idempotency()
	if idem.Window != time.Hour || !idem.Honours("PUT", "/x") || idem.Mismatch.Status != 409 || idem.Mismatch.Code != "keybrake_idempotency_mismatch" {
		t.Errorf("json-format idempotency %+v", idem)
	}
	var ve vendors.Error = idem.InFlight
	if ve.Code != "keybrake_idempotency_in_flight" {
		t.Errorf("in flight %+v", ve)
	}
}

func TestDeclaredIdempotencyValidation(t *testing.T) {
	day := Duration(24 * time.Hour)
	cases := []struct {
		idem IdempotencyConfig
		cred vendors.CredentialConfig
		want string
	}{
		{IdempotencyConfig{Window: day}, vendors.CredentialConfig{}, "is not a header name"},
		{IdempotencyConfig{Header: "Bad Header", Window: day}, vendors.CredentialConfig{}, "is not a header name"},
		{IdempotencyConfig{Header: "authorization", Window: day}, vendors.CredentialConfig{}, "carries the credential"},
		{IdempotencyConfig{Header: "x-api-key", Window: day}, vendors.CredentialConfig{From: vendors.FromHeader, Header: "X-Api-Key"}, "carries the credential"},
		{IdempotencyConfig{Header: "Idempotency-Key"}, vendors.CredentialConfig{}, "window 0s"},
		{IdempotencyConfig{Header: "Idempotency-Key", Window: Duration(721 * time.Hour)}, vendors.CredentialConfig{}, "at most 720h"},
		{IdempotencyConfig{Header: "Idempotency-Key", Window: day, Methods: []string{"FETCH"}}, vendors.CredentialConfig{}, "unknown method"},
		{IdempotencyConfig{Header: "Idempotency-Key", Window: day, ScopeHeaders: []string{"a b"}}, vendors.CredentialConfig{}, "scope header"},
	}
	for _, c := range cases {
		idem := c.idem
		_, err := New(Config{Name: "x", Credential: c.cred, Inject: vendors.InjectConfig{Secret: "s"}, Idempotency: &idem})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want %q", c.idem, err, c.want)
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("bad duration accepted")
	}
}
