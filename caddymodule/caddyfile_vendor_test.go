package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/declared"
	"github.com/keybrake/keybrake/vendors/twilio"
)

// adaptVendors adapts a Caddyfile whose global options hold the given
// keybrake block body, and returns the keybrake app's JSON.
func adaptVendors(t *testing.T, body string) (string, error) {
	t.Helper()
	input := "{\n\tkeybrake {\n" + body + "\n\t}\n}\n:8080 {\n\trespond ok\n}\n"
	out, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(input), nil)
	if err != nil {
		return "", err
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapted JSON: %v\n%s", err, out)
	}
	return string(cfg.Apps["keybrake"]), nil
}

// provisionGolden provisions the keybrake app of
// testdata/caddyfile_adapt/NAME, failing the test on an error.
func provisionGolden(t *testing.T, name string) *App {
	t.Helper()
	app, err := provisionJSON(t, goldenApp(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// reconcilerOf is the Twilio price reconciler a vendor would run, nil when
// it runs none.
func reconcilerOf(t *testing.T, rt *vendorRuntime) *twilio.Reconciler {
	t.Helper()
	jr, ok := rt.module.(vendormodule.JobRunner)
	if !ok {
		t.Fatalf("%T runs no job", rt.module)
	}
	job := jr.Job(nil, zap.NewNop())
	if job == nil {
		return nil
	}
	return job.Finder.(*twilio.Reconciler)
}

// TestTwilioVendors: provisioned with its secrets set, the Twilio vendor of
// testdata/caddyfile_adapt/twilio gets its unknown-cost policy and a
// reconciler configured from its block and upstream; the renamed one keeps
// its name and runs no reconciler.
func TestTwilioVendors(t *testing.T) {
	t.Setenv("TWILIO_ACCOUNT_SID", "ACreal0001")
	t.Setenv("TWILIO_AUTH_TOKEN", "realToken")
	t.Setenv("TWILIO_API_KEY", "")
	t.Setenv("TWILIO_API_BASE", "http://127.0.0.1:9/")
	t.Setenv("TWILIO_EU_TOKEN", "euToken")
	app := provisionGolden(t, "twilio")
	rt := app.vendors["twilio"]
	if rt.notConfigured != "" || rt.vendor.Name() != "twilio" {
		t.Fatalf("twilio: not configured %q, name %q", rt.notConfigured, rt.vendor.Name())
	}
	if !rt.unknownCost.Reserve || rt.unknownCost.Amount != 500_000 {
		t.Errorf("unknown cost policy %+v", rt.unknownCost)
	}
	rc := reconcilerOf(t, rt)
	if rc == nil {
		t.Fatal("no reconciler")
	}
	if rc.Vendor != "twilio" || rc.BaseURL != "http://127.0.0.1:9/" || rc.AccountSID != "ACreal0001" || rc.AuthToken != "realToken" ||
		rc.APIKey != "" || rc.MinAge != 10*time.Second || rc.Interval != 30*time.Second || rc.Batch != 50 || rc.GiveUpAfter != 24*time.Hour {
		t.Errorf("reconciler = %+v", rc)
	}
	eu := app.vendors["twilio_eu"]
	if eu.vendor.Name() != "twilio_eu" || reconcilerOf(t, eu) != nil || eu.notConfigured != "" {
		t.Fatalf("twilio_eu: name %q, not configured %q", eu.vendor.Name(), eu.notConfigured)
	}
}

// TestTwilioSecretsUnset: a Twilio vendor whose secrets expand to nothing
// is provisioned, not configured (the gate answers its calls with a 503
// naming the variables to set), and runs no reconciler; once they are set,
// the reconciler asks Twilio's API with the default timing.
func TestTwilioSecretsUnset(t *testing.T) {
	rt := provisionGolden(t, "twilio_secrets_unset").vendors["twilio"]
	want := "Keybrake is not configured for twilio: set the environment variable KB_TEST_UNSET_SID and KB_TEST_UNSET_TOKEN " +
		"and restart Keybrake (account_sid and auth_token in the keybrake global option)."
	if rt.notConfigured != want || reconcilerOf(t, rt) != nil {
		t.Fatalf("not configured %q", rt.notConfigured)
	}
	t.Setenv("KB_TEST_UNSET_SID", "ACset")
	t.Setenv("KB_TEST_UNSET_TOKEN", "tok")
	rt = provisionGolden(t, "twilio_secrets_unset").vendors["twilio"]
	rc := reconcilerOf(t, rt)
	if rt.notConfigured != "" || rc == nil || rc.BaseURL != twilio.DefaultReconcileBaseURL ||
		rc.MinAge != twilio.DefaultReconcileMinAge || rc.Interval != twilio.DefaultReconcileInterval {
		t.Fatalf("not configured %q, reconciler %+v", rt.notConfigured, rc)
	}
}

// TestResendVendors: the Resend vendor prices its recipients at the
// configured price; a second one without its key is not configured.
func TestResendVendors(t *testing.T) {
	t.Setenv("RESEND_API_KEY", "re_real")
	app := provisionGolden(t, "resend")
	rt := app.vendors["resend"]
	if rt.notConfigured != "" || rt.vendor.Name() != "resend" {
		t.Fatalf("resend: %+v", rt)
	}
	// Four recipients at $0.0004.
	req := httptest.NewRequest("POST", "/emails", nil)
	req.Header.Set("Content-Type", "application/json")
	est, err := rt.vendor.Estimate(req, []byte(`{"to":["a@x.io","b@x.io"],"cc":"c@x.io","bcc":["d@x.io"]}`))
	if err != nil || !est.Known || est.Cost != 1600 {
		t.Fatalf("estimate = %+v, %v; want 0.0016", est, err)
	}
	m := app.vendors["resend_marketing"]
	if !strings.Contains(m.notConfigured, "KB_TEST_UNSET_RESEND") || m.vendor.Name() != "resend_marketing" {
		t.Fatalf("resend_marketing: not configured %q, name %q", m.notConfigured, m.vendor.Name())
	}
}

// TestDeclaredOpenAIExample: the worked example of docs/vendors.md adapts
// without its secret, and provisions into exactly
// declared.OpenAIChatExample.
func TestDeclaredOpenAIExample(t *testing.T) {
	if strings.Contains(goldenApp(t, "declared_openai_example"), "sk-") {
		t.Fatal("a secret in the adapted JSON")
	}
	t.Setenv("OPENAI_API_KEY", "sk-real")
	rt := provisionGolden(t, "declared_openai_example").vendors["openai"]
	dv, ok := rt.vendor.(*declared.Vendor)
	if !ok || rt.notConfigured != "" {
		t.Fatalf("vendor is a %T, not configured %q", rt.vendor, rt.notConfigured)
	}
	want, _ := json.Marshal(declared.OpenAIChatExample("sk-real"))
	gotCfg, _ := json.Marshal(dv.Config())
	if string(gotCfg) != string(want) {
		t.Fatalf("provisioned declaration =\n%s\nwant\n%s", gotCfg, want)
	}
}

// TestDeclaredOptions: a declared vendor's options reach its declaration,
// which prices as declared; free_methods none leaves no method free; a
// declared vendor without its secret is not configured.
func TestDeclaredOptions(t *testing.T) {
	t.Setenv("MAPS_KEY", "mapsSecret")
	t.Setenv("MAPS_USER", "acct42")
	app := provisionGolden(t, "declared_options")
	rt := app.vendors["maps"]
	cfg := rt.vendor.(*declared.Vendor).Config()
	if cfg.Inject.Secret != "mapsSecret" || cfg.Inject.Username != "acct42" || cfg.ErrorFormat != "stripe" ||
		!reflect.DeepEqual(cfg.FreeMethods, []string{"GET", "HEAD", "OPTIONS"}) {
		t.Fatalf("declared config %+v", cfg)
	}
	if !rt.unknownCost.Reserve || rt.unknownCost.Amount != 250_000 {
		t.Errorf("unknown cost policy %+v", rt.unknownCost)
	}
	// A request the declaration prices: 3 waypoints × 2 alternatives ×
	// $0.001, plus its bound, 1 unit × $0.0009.
	req := httptest.NewRequest("POST", "/v1/routes/fast", nil)
	req.Header.Set("Content-Type", "application/json")
	est, err := rt.vendor.Estimate(req, []byte(`{"waypoints":["a","b","c"],"alternatives":2,"max_units":1}`))
	if err != nil || !est.Known || est.Cost != 6900 {
		t.Fatalf("estimate %+v %v; want 0.0069", est, err)
	}
	gw := app.vendors["sms-gw"]
	if fm := gw.vendor.(*declared.Vendor).Config().FreeMethods; fm == nil || len(fm) != 0 {
		t.Fatalf("free_methods none = %#v; want an empty list", fm)
	}
	// With no free methods, a GET nothing declares is of unknown cost.
	if est, _ := gw.vendor.Estimate(httptest.NewRequest("GET", "/status", nil), nil); est.Known {
		t.Fatalf("GET with free_methods none: %+v", est)
	}
	if llm := app.vendors["llm"]; !strings.Contains(llm.notConfigured, "KB_TEST_UNSET_LLM") || llm.vendor.Name() != "llm" {
		t.Fatalf("llm: not configured %q", llm.notConfigured)
	}
}

// TestDeclaredIdempotency: a declared vendor gets free replays only with
// an idempotency block, on its methods and paths, refused in its error
// format.
func TestDeclaredIdempotency(t *testing.T) {
	app := provisionGolden(t, "declared_idempotency")
	for name, honours := range map[string]bool{"acme": true, "plain": false} {
		h, ok := app.vendors[name].vendor.(vendors.IdempotencyHonouring)
		if !ok {
			t.Fatalf("%s: no IdempotencyHonouring", name)
		}
		idem := h.Idempotency()
		if idem.Honours(http.MethodPost, "/orders/o_1/pay") != honours {
			t.Errorf("%s honours POST: %v; want %v", name, !honours, honours)
		}
		if honours && idem.Honours(http.MethodPost, "/refunds") {
			t.Errorf("%s honours a path outside its paths", name)
		}
		if honours && (idem.Window != 24*time.Hour || len(idem.ScopeHeaders) != 2 || idem.Mismatch.Type != "idempotency_error") {
			t.Errorf("%s: %+v", name, idem)
		}
	}
}

// TestRenamedKeepsOptionalBehaviours: a built-in vendor under another name
// keeps its idempotency (Resend's, or none for Twilio) and its recorded
// path, and its voice rates price calls.
func TestRenamedKeepsOptionalBehaviours(t *testing.T) {
	app := provisionGolden(t, "renamed_builtins")
	mail, sms := app.vendors["mail"], app.vendors["sms"]
	if idem := mail.vendor.(vendors.IdempotencyHonouring).Idempotency(); !idem.Honours(http.MethodPost, "/emails") || idem.Window != 24*time.Hour {
		t.Errorf("renamed resend idempotency %+v", idem)
	}
	if idem := sms.vendor.(vendors.IdempotencyHonouring).Idempotency(); idem.Honours(http.MethodPost, "/emails") {
		t.Errorf("renamed twilio honours idempotency: %+v", idem)
	}
	if p := sms.vendor.(vendors.PathRecorder).RecordedPath("/2010-04-01/Accounts/vaultkey123/Messages.json"); p != "/2010-04-01/Accounts/ACreal1/Messages.json" {
		t.Errorf("recorded path %s", p)
	}
	// +44 per minute; +1907 falls to the default.
	for to, want := range map[string]money.Micros{"+442079460000": 15_000, "+19075550100": 250_000} {
		body := "To=" + strings.ReplaceAll(to, "+", "%2B") + "&TimeLimit=60"
		r := httptest.NewRequest(http.MethodPost, "/2010-04-01/Accounts/AC1/Calls.json", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		est, err := sms.vendor.Estimate(r, []byte(body))
		if err != nil || est.Cost != want {
			t.Errorf("call to %s: %+v %v; want %v", to, est, err, want)
		}
	}
}

func TestAdaptVendorErrors(t *testing.T) {
	cases := []struct{ name, body, want string }{
		// Any kind.
		{"bad vendor name", `vendor OpenAI`, `vendor name "OpenAI": want lower-case letters`},
		{"option given twice", "vendor resend {\nper_email 0.001\nper_email 0.002\n}", "vendor resend: option 'per_email' is given twice"},
		{"kind of a built-in name", "vendor stripe {\nkind twilio\n}", "vendor stripe is built in: its kind can only be stripe, not twilio"},
		{"kind without a value", "vendor x {\nkind\n}", "wrong argument count"},
		{"upstream not a URL", "vendor resend {\nupstream api.resend.com\n}", `upstream "api.resend.com": want an absolute http or https URL`},
		{"upstream with two values", "vendor resend {\nupstream http://a http://b\n}", "wrong argument count"},
		// Options of another kind.
		{"secret_key on twilio", "vendor twilio {\nsecret_key x\n}", "vendor twilio: 'secret_key' is not an option of a twilio vendor (it takes account_sid, auth_token, api_key, call_max, message_rate, default_message_rate, voice_rate, default_voice_rate, twiml_url, reconcile)"},
		{"account_sid on stripe", "vendor stripe {\naccount_sid AC1\n}", "'account_sid' is not an option of a stripe vendor"},
		{"rate on resend", "vendor resend {\nrate jpy 0.0067\n}", "'rate' is not an option of a resend vendor"},
		{"per_email on a declared vendor", "vendor llm {\nper_email 0.01\n}", "'per_email' is not an option of a declared vendor"},
		{"twilio option on a misspelt name", "vendor twillio {\naccount_sid AC1\n}", "'account_sid' is not an option of a declared vendor (it takes secret_key, credential, inject, errors, free_methods, endpoint, idempotency; for a twilio vendor, name it twilio or add 'kind twilio'), at Caddyfile:4"},
		{"endpoint on twilio, kind given last", "vendor sms {\nendpoint POST /x\nkind twilio\n}", "'endpoint' is not an option of a twilio vendor"},
		// Twilio.
		{"call_max not an amount", "vendor twilio {\ncall_max lots\n}", "call_max: invalid amount 'lots'"},
		{"call_max zero", "vendor twilio {\ncall_max 0\n}", "call_max: invalid amount '0'"},
		{"message_rate without prices", "vendor twilio {\nmessage_rate +44\n}", "message_rate needs a prefix and prices"},
		{"message_rate bad prefix", "vendor twilio {\nmessage_rate 44 sms 0.05\n}", "message_rate: prefix '44' must be + and 1 to 15 digits"},
		{"message_rate bad kind", "vendor twilio {\nmessage_rate +44 voice 0.05\n}", "message_rate: unknown message kind 'voice'"},
		{"message_rate bad price", "vendor twilio {\nmessage_rate +44 sms -1\n}", "message_rate: invalid sms price '-1'"},
		{"message_rate price missing", "vendor twilio {\nmessage_rate +44 sms 0.05 mms\n}", "message_rate: want 'sms <usd>' and/or 'mms <usd>'"},
		{"message_rate twice", "vendor twilio {\nmessage_rate +44 sms 0.05\nmessage_rate +44 sms 0.06\n}", "message_rate +44 is given twice"},
		{"message_rate kind twice", "vendor twilio {\nmessage_rate +44 sms 0.05 sms 0.06\n}", "message_rate: sms is given twice"},
		{"default_message_rate unknown", "vendor twilio {\ndefault_message_rate unknown\n}", "default_message_rate cannot be unknown"},
		{"default_message_rate empty", "vendor twilio {\ndefault_message_rate\n}", "default_message_rate: want 'sms <usd>' and/or 'mms <usd>'"},
		{"reconcile bad argument", "vendor twilio {\nreconcile later\n}", "reconcile takes 'off' or a block, not 'later'"},
		{"reconcile off with a block", "vendor twilio {\nreconcile off {\nmin_age 1s\n}\n}", "reconcile off takes no block"},
		{"reconcile unknown option", "vendor twilio {\nreconcile {\nevery 1m\n}\n}", "unrecognized reconcile option 'every'"},
		{"reconcile bad duration", "vendor twilio {\nreconcile {\nmin_age soon\n}\n}", "invalid duration 'soon'"},
		{"reconcile zero duration", "vendor twilio {\nreconcile {\ninterval 0s\n}\n}", "duration must be positive"},
		{"reconcile bad batch", "vendor twilio {\nreconcile {\nbatch 0\n}\n}", "reconcile: batch '0' must be a number from 1 to 10000"},
		{"reconcile option twice", "vendor twilio {\nreconcile {\nbatch 5\nbatch 6\n}\n}", "reconcile: option 'batch' is given twice"},
		{"literal account sid not alphanumeric", "vendor twilio {\naccount_sid AC-123\nauth_token x\n}", "account_sid must be alphanumeric"},
		{"literal api key not alphanumeric", "vendor twilio {\napi_key SK_1\n}", "api_key must be alphanumeric"},
		{"voice_rate without a price", "vendor twilio {\nvoice_rate +44\n}", "voice_rate needs a prefix and a price per minute"},
		{"voice_rate bad prefix", "vendor twilio {\nvoice_rate 44 0.01\n}", "voice_rate: prefix '44' must be + and 1 to 15 digits"},
		{"voice_rate bad price", "vendor twilio {\nvoice_rate +44 free\n}", "voice_rate +44: invalid price 'free'"},
		{"voice_rate twice", "vendor twilio {\nvoice_rate +44 0.01\nvoice_rate +44 0.02\n}", "voice_rate +44 is given twice"},
		{"default_voice_rate zero", "vendor twilio {\ndefault_voice_rate 0\n}", "default_voice_rate: invalid amount '0'"},
		{"idempotency on twilio", "vendor twilio {\nidempotency Idempotency-Key {\nwindow 24h\n}\n}", "'idempotency' is not an option of a twilio vendor"},
		// Resend.
		{"per_email not an amount", "vendor resend {\nper_email 1e-3\n}", "per_email: invalid amount '1e-3'"},
		// Declared.
		{"bad credential", "vendor llm {\ncredential cookie\n}", "credential must be bearer, basic_password, basic_user or header <Name>, not 'cookie'"},
		{"credential header without a name", "vendor llm {\ncredential header\n}", "credential header needs a header name"},
		{"credential header Keybrake's own", "vendor llm {\ncredential header X-Keybrake-Key\n}", "X-Keybrake-* headers are Keybrake's own"},
		{"credential bearer with an argument", "vendor llm {\ncredential bearer X\n}", "credential bearer takes no more arguments"},
		{"bad inject", "vendor llm {\ninject query\n}", "inject must be bearer, basic [<username>] or header <Name>, not 'query'"},
		{"inject header without a name", "vendor llm {\ninject header\n}", "inject header needs a header name"},
		{"inject basic username with a colon", "vendor llm {\ninject basic a:b\n}", "a Basic username cannot contain ':'"},
		{"bad errors", "vendor llm {\nerrors xml\n}", "errors must be json, stripe, twilio or resend, not 'xml'"},
		{"free_methods empty", "vendor llm {\nfree_methods\n}", "free_methods needs methods"},
		{"free_methods bad method", "vendor llm {\nfree_methods FETCH\n}", "free_methods: unknown method 'FETCH'"},
		{"endpoint without a path", "vendor llm {\nendpoint POST\n}", "endpoint needs a method and a path"},
		{"endpoint bad method", "vendor llm {\nendpoint SEND /v1/x\n}", "endpoint SEND /v1/x:"},
		{"endpoint twice", "vendor llm {\nendpoint POST /v1/x\nendpoint POST /v1/x\n}", "endpoint POST /v1/x is declared twice"},
		{"endpoint unknown option", "vendor llm {\nendpoint POST /v1/x {\ncost flat 1\n}\n}", "unrecognized endpoint option 'cost' (want estimate or settle)"},
		{"estimate without a term", "vendor llm {\nendpoint POST /v1/x {\nestimate\n}\n}", "estimate needs a term"},
		{"estimate unknown term", "vendor llm {\nendpoint POST /v1/x {\nestimate tokens 5\n}\n}", "estimate: unknown term 'tokens'"},
		{"estimate flat bad amount", "vendor llm {\nendpoint POST /v1/x {\nestimate flat free\n}\n}", "estimate flat: invalid amount 'free'"},
		{"estimate flat extra", "vendor llm {\nendpoint POST /v1/x {\nestimate flat 1 price 2\n}\n}", "estimate flat needs one amount"},
		{"estimate field without price", "vendor llm {\nendpoint POST /v1/x {\nestimate field max_tokens\n}\n}", "estimate field max_tokens: price is required"},
		{"estimate field without a path", "vendor llm {\nendpoint POST /v1/x {\nestimate field\n}\n}", "estimate field needs a path"},
		{"estimate bad price", "vendor llm {\nendpoint POST /v1/x {\nestimate field n price 0.0000000001\n}\n}", "estimate field: invalid price '0.0000000001'"},
		{"estimate modifier without value", "vendor llm {\nendpoint POST /v1/x {\nestimate field n price\n}\n}", "estimate field: 'price' needs a value"},
		{"estimate per on a field", "vendor llm {\nendpoint POST /v1/x {\nestimate field n price 1 per 4\n}\n}", "estimate field: unknown modifier 'per'"},
		{"estimate default on chars", "vendor llm {\nendpoint POST /v1/x {\nestimate chars m price 1 default 4\n}\n}", "estimate chars: unknown modifier 'default'"},
		{"estimate bad per", "vendor llm {\nendpoint POST /v1/x {\nestimate chars m price 1 per 0\n}\n}", "estimate chars: per '0' must be a number from 1 to 1000"},
		{"estimate bad default", "vendor llm {\nendpoint POST /v1/x {\nestimate field n price 1 default -3\n}\n}", "estimate field: invalid default '-3'"},
		{"estimate modifier twice", "vendor llm {\nendpoint POST /v1/x {\nestimate field n price 1 price 2\n}\n}", "estimate field: 'price' is given twice"},
		{"estimate bad path", "vendor llm {\nendpoint POST /v1/x {\nestimate field a..b price 1\n}\n}", `path "a..b": empty segment`},
		{"settle txn_id twice", "vendor llm {\nendpoint POST /v1/x {\nsettle txn_id id\nsettle txn_id other\n}\n}", "settle txn_id is given twice"},
		{"settle txn_id without a path", "vendor llm {\nendpoint POST /v1/x {\nsettle txn_id\n}\n}", "settle txn_id needs one path"},
		{"idempotency without a header", "vendor llm {\nidempotency {\nwindow 24h\n}\n}", "idempotency needs one header name"},
		{"idempotency without a window", "vendor llm {\nidempotency Idempotency-Key\n}", "idempotency Idempotency-Key: window is required"},
		{"idempotency bad window", "vendor llm {\nidempotency Idempotency-Key {\nwindow forever\n}\n}", "idempotency: window 'forever' must be a positive duration"},
		{"idempotency window too long", "vendor llm {\nidempotency Idempotency-Key {\nwindow 1000h\n}\n}", "window 1000h0m0s: want a duration above 0 and at most 720h"},
		{"idempotency bad method", "vendor llm {\nidempotency Idempotency-Key {\nwindow 24h\nmethods SEND\n}\n}", "idempotency: unknown method 'SEND'"},
		{"idempotency unknown option", "vendor llm {\nidempotency Idempotency-Key {\nwindow 24h\nscope X-A\n}\n}", "unrecognized idempotency option 'scope'"},
		{"idempotency option twice", "vendor llm {\nidempotency Idempotency-Key {\nwindow 24h\nwindow 1h\n}\n}", "idempotency: option 'window' is given twice"},
		{"idempotency on the credential header", "vendor llm {\ncredential header X-Api-Key\nidempotency x-api-key {\nwindow 24h\n}\n}", "idempotency: header X-Api-Key carries the credential"},
		{"idempotency twice", "vendor llm {\nidempotency A {\nwindow 1h\n}\nidempotency B {\nwindow 1h\n}\n}", "option 'idempotency' is given twice"},
		{"settle bad term", "vendor llm {\nendpoint POST /v1/x {\nsettle usage 3\n}\n}", "settle: unknown term 'usage'"},
		// A rule whose cost is read from the answer needs a bound (issue 17).
		{"settle without a bound", "vendor llm {\nendpoint POST /v1/x {\nestimate field max_tokens price 1 default 4\nsettle field usage.n price 1\n}\n}", "which nothing in the request bounds"},
		{"bound on a settle term", "vendor llm {\nendpoint POST /v1/x {\nestimate field max_tokens price 1 default 4 bound\nsettle field usage.n price 1 bound\n}\n}", "bound is only for estimate terms"},
		{"bound without a default", "vendor llm {\nendpoint POST /v1/x {\nestimate field max_tokens price 1 bound\nsettle field usage.n price 1\n}\n}", "a bound field needs a default"},
		{"bound on chars", "vendor llm {\nendpoint POST /v1/x {\nestimate chars m price 1 bound\n}\n}", "bound is only for a field term"},
		{"bound twice", "vendor llm {\nendpoint POST /v1/x {\nestimate field n price 1 default 1 bound bound\n}\n}", "'bound' is given twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := adaptVendors(t, c.body)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want it to contain %q", err, c.want)
			}
			// Every error names where in the Caddyfile it is.
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("err %q has no file and line", err)
			}
		})
	}
}

// TestVendorJSONErrors: the same checks hold for a JSON config that never
// went through the Caddyfile.
func TestVendorJSONErrors(t *testing.T) {
	cases := []struct {
		name, vendor, json, want string
	}{
		{"field of another kind", "twilio", `{"secret_key":"x"}`, `unknown field "secret_key"`},
		{"fields of another kind", "stripe", `{"kind":"stripe","per_email_usd":1}`, `unknown field "per_email_usd"`},
		{"unknown kind", "paypal", `{"kind":"paypal"}`, `unknown vendor kind "paypal" (want declared, resend, stripe, twilio)`},
		{"built-in name of another kind", "resend", `{"kind":"declared"}`, "vendor resend is built in"},
		{"bad name", "Open AI", `{}`, `vendor name "Open AI"`},
		{"secret in inject", "llm", `{"secret_key":"a","inject":{"secret":"b"}}`, "put the secret in secret_key, not in inject"},
		{"bad upstream", "twilio", `{"upstream":"ftp://x"}`, `upstream "ftp://x"`},
		{"bad reconcile batch", "twilio", `{"reconcile":{"batch":-1}}`, "reconcile: durations and batch must not be negative"},
		{"bad unknown_cost", "llm", `{"secret_key":"a","unknown_cost":"maybe"}`, `unknown_cost must be deny or reserve, not "maybe"`},
		{"unknown_cost reserve without an amount", "llm", `{"secret_key":"a","unknown_cost":"reserve"}`, "unknown_cost reserve needs a positive amount"},
		{"bad declaration", "llm", `{"secret_key":"a","endpoints":[{"match":"POST /x","estimate":[{"field":"n"}]}]}`, "price_usd is required"},
		{"bad stripe rate", "stripe", `{"rates":{"jpy":"-1"}}`, "rate jpy"},
		{"negative twilio rate", "twilio", `{"message_rates":{"+44":{"sms":0.1}},"account_sid":"AC1","auth_token":"x","call_max_usd":-1}`, "invalid amount"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, _ := json.Marshal(map[string]json.RawMessage{"vendors": json.RawMessage(`{"` + c.vendor + `":` + c.json + `}`)})
			_, err := provisionJSON(t, string(raw))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want it to contain %q", err, c.want)
			}
		})
	}
	// Without a kind, a vendor named like a kind is of that kind and any
	// other is declared: the JSON of earlier versions loads unchanged.
	app, err := provisionJSON(t, `{"vendors":{"stripe":{"secret_key":"sk_x"},"llm":{"secret_key":"a"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := app.vendors["llm"].vendor.(*declared.Vendor); !ok || app.vendors["stripe"].vendor.Name() != "stripe" {
		t.Fatalf("vendors %+v", app.vendors)
	}
}

// fakeTwilioPrices answers Twilio's message fetch with a price and counts
// the fetches.
type fakeTwilioPrices struct {
	fetches atomic.Int64
	auth    atomic.Value
}

func (f *fakeTwilioPrices) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.fetches.Add(1)
	f.auth.Store(r.Header.Get("Authorization") + " " + r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	sid := strings.TrimSuffix(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], ".json")
	fmt.Fprintf(w, `{"sid":%q,"status":"delivered","price":"-0.00750","price_unit":"USD"}`, sid)
}

// TestReconcilerLifecycle: the keybrake app runs the Twilio reconciler
// from Start to Stop on its own ledger: an unpriced message is settled at
// its real price, and once the app is stopped nothing is fetched any more.
func TestReconcilerLifecycle(t *testing.T) {
	fake := &fakeTwilioPrices{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	t.Setenv("KB_TEST_TWILIO_SID", "ACreal0001")
	t.Setenv("KB_TEST_TWILIO_TOKEN", "realToken")
	t.Setenv("KB_TEST_TWILIO_BASE", srv.URL)
	dsn := "sqlite:" + t.TempDir() + "/ledger.db"
	raw, err := adaptVendors(t, `
		ledger `+dsn+`
		vendor twilio {
			account_sid {env.KB_TEST_TWILIO_SID}
			auth_token {env.KB_TEST_TWILIO_TOKEN}
			upstream {env.KB_TEST_TWILIO_BASE}
			reconcile {
				min_age 1ms
				interval 20ms
			}
		}`)
	if err != nil {
		t.Fatal(err)
	}
	app := loadApp(t, raw)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Cleanup() }()
	// Provision (all `caddy validate` runs) leaves the ledger alone.
	if _, err := os.Stat(strings.TrimPrefix(dsn, "sqlite:")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Provision touched the ledger file: %v", err)
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}

	// One unpriced message in the ledger, as the gate leaves it.
	store := app.ledger.store
	bg := context.Background()
	limit := money.PerDollar
	now := time.Now().UTC()
	if err := store.CreateKey(bg, ledger.Key{ID: "vkLifecycle000000000001", Hash: ledger.HashSecret("kbLifecycleSecret000000000000000"),
		Vendor: "twilio", TotalCap: &limit, AllowedEndpoints: []string{"POST /x"}, RunLabel: "lifecycle",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reserve(bg, ledger.ReserveRequest{CallID: "call1", KeyID: "vkLifecycle000000000001", Vendor: "twilio",
		Method: "POST", Path: "/x", Endpoint: "POST /x", Estimate: twilio.DefaultSMS, Now: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := store.Settle(bg, "call1", ledger.Settlement{StatusCode: 201, Cost: twilio.DefaultSMS, CostState: ledger.CostUnpriced,
		VendorTxnID: "SM0123456789abcdef0123456789abcdef", Now: now}); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(10 * time.Second)
	var c ledger.Call
	for {
		calls, _, err := store.Audit(bg, ledger.AuditFilter{RunLabel: "lifecycle"})
		if err != nil || len(calls) != 1 {
			t.Fatalf("audit: %v, %d calls", err, len(calls))
		}
		c = calls[0]
		if c.CostState == ledger.CostSettled || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.CostState != ledger.CostSettled || c.Cost != 7500 {
		t.Fatalf("call after reconciliation: %s at %s; want settled at 0.0075", c.CostState, c.Cost)
	}
	wantAuth := "Basic QUNyZWFsMDAwMTpyZWFsVG9rZW4= /2010-04-01/Accounts/ACreal0001/Messages/SM0123456789abcdef0123456789abcdef.json"
	if got, _ := fake.auth.Load().(string); got != wantAuth {
		t.Errorf("fetch = %q; want %q", got, wantAuth)
	}
	if err := app.Stop(); err != nil {
		t.Fatal(err)
	}
	// Stop waits for the reconciler: nothing is fetched afterwards. (A
	// fetch would need an unpriced call, so add one.)
	if _, err := store.Reserve(bg, ledger.ReserveRequest{CallID: "call2", KeyID: "vkLifecycle000000000001", Vendor: "twilio",
		Method: "POST", Path: "/x", Endpoint: "POST /x", Estimate: twilio.DefaultSMS, Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := store.Settle(bg, "call2", ledger.Settlement{StatusCode: 201, Cost: twilio.DefaultSMS, CostState: ledger.CostUnpriced,
		VendorTxnID: "SM1123456789abcdef0123456789abcdef", Now: now}); err != nil {
		t.Fatal(err)
	}
	before := fake.fetches.Load()
	time.Sleep(100 * time.Millisecond) // five intervals
	if after := fake.fetches.Load(); after != before {
		t.Fatalf("the reconciler fetched %d times after Stop", after-before)
	}
}
