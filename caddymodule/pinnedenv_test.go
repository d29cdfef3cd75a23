package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestPinEnvRecordsTheAdaptingEnvironment(t *testing.T) {
	t.Setenv("KB_PIN_SET", ":8443")
	a := new(App)
	d := caddyfile.NewTestDispenser("keybrake {\n\tpin_env KB_PIN_SET KB_PIN_UNSET\n}")
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if v := a.PinnedEnv["KB_PIN_SET"]; v == nil || *v != ":8443" {
		t.Errorf("KB_PIN_SET pinned as %v; want :8443", v)
	}
	if v, ok := a.PinnedEnv["KB_PIN_UNSET"]; !ok || v != nil {
		t.Errorf("KB_PIN_UNSET pinned as %v (%v); want null", v, ok)
	}
	if err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser("keybrake {\n\tpin_env\n}")); err == nil {
		t.Error("pin_env without a name was accepted")
	}
}

func TestCheckPinnedEnv(t *testing.T) {
	s := func(v string) *string { return &v }
	started := map[string]string{"KEYBRAKE_LISTEN": ":8443", "STRIPE_API_BASE": "http://127.0.0.1:12111"}
	lookup := func(k string) (string, bool) { v, ok := started[k]; return v, ok }
	same := map[string]*string{"KEYBRAKE_LISTEN": s(":8443"), "STRIPE_API_BASE": s("http://127.0.0.1:12111"), "KEYBRAKE_BIND": nil}
	if err := checkPinnedEnv(same, lookup); err != nil {
		t.Fatalf("the environment Caddy started with was refused: %v", err)
	}
	// A reload from an empty environment: both unset, one set elsewhere.
	err := checkPinnedEnv(map[string]*string{"KEYBRAKE_LISTEN": nil, "STRIPE_API_BASE": s("https://api.stripe.com"),
		"KEYBRAKE_BIND": s("127.0.0.1")}, lookup)
	if err == nil {
		t.Fatal("a reload that moves the site and the upstream was accepted")
	}
	for _, want := range []string{"KEYBRAKE_LISTEN (unset in this config", "STRIPE_API_BASE (a different value",
		"KEYBRAKE_BIND (set in this config", "restart Caddy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "api.stripe.com") || strings.Contains(err.Error(), "12111") {
		t.Errorf("error %q shows a value; values may be secrets", err)
	}
}
