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

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
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

// loadApp turns the keybrake app's JSON back into an App, as Caddy does.
func loadApp(t *testing.T, raw string) *App {
	t.Helper()
	app := new(App)
	if err := json.Unmarshal([]byte(raw), app); err != nil {
		t.Fatalf("unmarshalling %s: %v", raw, err)
	}
	return app
}

func TestAdaptTwilioVendor(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor twilio {
			account_sid {env.TWILIO_ACCOUNT_SID}
			auth_token {env.TWILIO_AUTH_TOKEN}
			api_key {env.TWILIO_API_KEY}
			upstream {env.TWILIO_API_BASE}
			call_max 2.50
			message_rate +44 sms 0.0524 mms 0.10
			message_rate +33 mms 0.2
			message_rate +1787 unknown
			default_message_rate sms 0.09
			twiml_url https://twiml.example.com/calls/
			twiml_url https://static.example.com/ivr
			unknown_cost reserve 0.5
			reconcile {
				min_age 10s
				interval 30s
				batch 50
				give_up_after 24h
			}
		}
		vendor twilio_eu {
			kind twilio
			account_sid ACeu123
			auth_token {env.TWILIO_EU_TOKEN}
			reconcile off
		}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"vendors":{` +
		`"twilio":{"upstream":"{env.TWILIO_API_BASE}","unknown_cost":"reserve","unknown_cost_usd":0.5,` +
		`"account_sid":"{env.TWILIO_ACCOUNT_SID}","auth_token":"{env.TWILIO_AUTH_TOKEN}","api_key":"{env.TWILIO_API_KEY}",` +
		`"call_max_usd":2.5,"twiml_urls":["https://twiml.example.com/calls/","https://static.example.com/ivr"],"message_rates":{"+1787":{"sms":0,"mms":0,"unknown":true},"+33":{"sms":0,"mms":0.2},"+44":{"sms":0.0524,"mms":0.1}},` +
		`"default_message_rate":{"sms":0.09,"mms":0},` +
		`"reconcile":{"min_age":10000000000,"interval":30000000000,"batch":50,"give_up_after":86400000000000}},` +
		`"twilio_eu":{"kind":"twilio","account_sid":"ACeu123","auth_token":"{env.TWILIO_EU_TOKEN}","reconcile":{"off":true}}}}`
	if got != want {
		t.Fatalf("keybrake app =\n%s\nwant\n%s", got, want)
	}

	// Provisioned with its secrets set: the reconciler is configured from
	// the block and the upstream; the renamed vendor keeps its name.
	t.Setenv("TWILIO_ACCOUNT_SID", "ACreal0001")
	t.Setenv("TWILIO_AUTH_TOKEN", "realToken")
	t.Setenv("TWILIO_API_KEY", "")
	t.Setenv("TWILIO_API_BASE", "http://127.0.0.1:9/")
	t.Setenv("TWILIO_EU_TOKEN", "euToken")
	app := loadApp(t, got)
	repl := caddy.NewReplacer()
	rt, err := app.Vendors["twilio"].build("twilio", repl)
	if err != nil {
		t.Fatal(err)
	}
	if rt.missing != "" || rt.vendor.Name() != "twilio" {
		t.Fatalf("twilio: missing %q, name %q", rt.missing, rt.vendor.Name())
	}
	if !rt.unknownCost.Reserve || rt.unknownCost.Amount != 500_000 {
		t.Errorf("unknown cost policy %+v", rt.unknownCost)
	}
	rc := rt.reconciler
	if rc == nil {
		t.Fatal("no reconciler")
	}
	if rc.Vendor != "twilio" || rc.BaseURL != "http://127.0.0.1:9/" || rc.AccountSID != "ACreal0001" || rc.AuthToken != "realToken" ||
		rc.APIKey != "" || rc.MinAge != 10*time.Second || rc.Interval != 30*time.Second || rc.Batch != 50 || rc.GiveUpAfter != 24*time.Hour {
		t.Errorf("reconciler = %+v", rc)
	}
	eu, err := app.Vendors["twilio_eu"].build("twilio_eu", repl)
	if err != nil {
		t.Fatal(err)
	}
	if eu.vendor.Name() != "twilio_eu" || eu.reconciler != nil || eu.missing != "" {
		t.Fatalf("twilio_eu: name %q, reconciler %v, missing %q", eu.vendor.Name(), eu.reconciler, eu.missing)
	}
}

// TestTwilioSecretsUnset: a Twilio vendor whose secrets expand to nothing
// is provisioned, marked missing (its calls get a 503), and runs no
// reconciler; the reconciler defaults to Twilio's API.
func TestTwilioSecretsUnset(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor twilio {
			account_sid {env.KB_TEST_UNSET_SID}
			auth_token {env.KB_TEST_UNSET_TOKEN}
		}`)
	if err != nil {
		t.Fatal(err)
	}
	if got != `{"vendors":{"twilio":{"account_sid":"{env.KB_TEST_UNSET_SID}","auth_token":"{env.KB_TEST_UNSET_TOKEN}"}}}` {
		t.Fatalf("adapted: %s", got)
	}
	app := loadApp(t, got)
	rt, err := app.Vendors["twilio"].build("twilio", caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if rt.missing != "account_sid and auth_token" || rt.reconciler != nil {
		t.Fatalf("missing %q, reconciler %v", rt.missing, rt.reconciler)
	}
	t.Setenv("KB_TEST_UNSET_SID", "ACset")
	t.Setenv("KB_TEST_UNSET_TOKEN", "tok")
	rt, err = app.Vendors["twilio"].build("twilio", caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if rt.missing != "" || rt.reconciler == nil || rt.reconciler.BaseURL != twilio.DefaultReconcileBaseURL ||
		rt.reconciler.MinAge != 0 || rt.reconciler.Interval != 0 {
		t.Fatalf("missing %q, reconciler %+v", rt.missing, rt.reconciler)
	}
}

func TestAdaptResendVendor(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor resend {
			secret_key {env.RESEND_API_KEY}
			per_email 0.0004
			upstream https://api.resend.com
		}
		vendor resend_marketing {
			kind resend
			secret_key {env.KB_TEST_UNSET_RESEND}
		}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"vendors":{"resend":{"upstream":"https://api.resend.com","secret_key":"{env.RESEND_API_KEY}","per_email_usd":0.0004},` +
		`"resend_marketing":{"kind":"resend","secret_key":"{env.KB_TEST_UNSET_RESEND}"}}}`
	if got != want {
		t.Fatalf("keybrake app =\n%s\nwant\n%s", got, want)
	}
	t.Setenv("RESEND_API_KEY", "re_real")
	app := loadApp(t, got)
	rt, err := app.Vendors["resend"].build("resend", caddy.NewReplacer())
	if err != nil || rt.missing != "" || rt.vendor.Name() != "resend" {
		t.Fatalf("resend: %v %+v", err, rt)
	}
	// Four recipients at $0.0004.
	req := httptest.NewRequest("POST", "/emails", nil)
	req.Header.Set("Content-Type", "application/json")
	est, err := rt.vendor.Estimate(req, []byte(`{"to":["a@x.io","b@x.io"],"cc":"c@x.io","bcc":["d@x.io"]}`))
	if err != nil || !est.Known || est.Cost != 1600 {
		t.Fatalf("estimate = %+v, %v; want 0.0016", est, err)
	}
	m, err := app.Vendors["resend_marketing"].build("resend_marketing", caddy.NewReplacer())
	if err != nil || m.missing != "secret_key" || m.vendor.Name() != "resend_marketing" {
		t.Fatalf("resend_marketing: %v missing %q", err, m.missing)
	}
}

// TestAdaptDeclaredOpenAIExample: the worked example of docs/vendors.md
// adapts, and provisions into exactly declared.OpenAIChatExample.
func TestAdaptDeclaredOpenAIExample(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor openai {
			upstream https://api.openai.com
			secret_key {env.OPENAI_API_KEY}
			credential bearer
			inject bearer
			errors json
			unknown_cost deny
			endpoint POST /v1/chat/completions {
				estimate field max_completion_tokens|max_tokens price 0.0000006 default 4096 times n
				estimate chars messages.*.content price 0.00000015 per 4
				estimate chars tools price 0.00000015 per 4
				settle txn_id id
				settle field usage.prompt_tokens price 0.00000015
				settle field usage.completion_tokens price 0.0000006
			}
		}`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "sk-") {
		t.Fatal("a secret in the adapted JSON")
	}
	t.Setenv("OPENAI_API_KEY", "sk-real")
	app := loadApp(t, got)
	rt, err := app.Vendors["openai"].build("openai", caddy.NewReplacer())
	if err != nil || rt.missing != "" {
		t.Fatalf("build: %v, missing %q", err, rt.missing)
	}
	dv, ok := rt.vendor.(*declared.Vendor)
	if !ok {
		t.Fatalf("vendor is a %T", rt.vendor)
	}
	want, _ := json.Marshal(declared.OpenAIChatExample("sk-real"))
	gotCfg, _ := json.Marshal(dv.Config())
	if string(gotCfg) != string(want) {
		t.Fatalf("provisioned declaration =\n%s\nwant\n%s", gotCfg, want)
	}
}

func TestAdaptDeclaredOptions(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor maps {
			kind declared
			secret_key {env.MAPS_KEY}
			credential header X-Api-Key
			inject basic {env.MAPS_USER}
			errors stripe
			free_methods GET HEAD OPTIONS
			unknown_cost reserve 0.25
			endpoint GET /v1/geocode {
				estimate flat 0.005
				settle txn_id request_id
			}
			endpoint POST /v1/routes/* {
				estimate count waypoints price 0.001 times alternatives
				settle field billing.units price 0.0009
			}
			endpoint POST /v1/ping
		}
		vendor sms-gw {
			secret_key lit3ral
			credential basic_user
			inject header Authorization-Token
			free_methods none
		}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"vendors":{` +
		`"maps":{"kind":"declared","secret_key":"{env.MAPS_KEY}","unknown_cost":"reserve","unknown_cost_usd":0.25,` +
		`"credential":{"from":"header","header":"X-Api-Key"},"inject":{"as":"basic","username":"{env.MAPS_USER}"},` +
		`"error_format":"stripe","free_methods":["GET","HEAD","OPTIONS"],"endpoints":[` +
		`{"match":"GET /v1/geocode","estimate":[{"flat_usd":"0.005"}],"settle":{"txn_id_path":"request_id"}},` +
		`{"match":"POST /v1/routes/*","estimate":[{"count":"waypoints","price_usd":"0.001","times":"alternatives"}],"settle":{"terms":[{"field":"billing.units","price_usd":"0.0009"}]}},` +
		`{"match":"POST /v1/ping","settle":{}}]},` +
		`"sms-gw":{"secret_key":"lit3ral","credential":{"from":"basic_user"},"inject":{"as":"header","header":"Authorization-Token"},"free_methods":[]}}}`
	if got != want {
		t.Fatalf("keybrake app =\n%s\nwant\n%s", got, want)
	}
	t.Setenv("MAPS_KEY", "mapsSecret")
	t.Setenv("MAPS_USER", "acct42")
	app := loadApp(t, got)
	rt, err := app.Vendors["maps"].build("maps", caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	cfg := rt.vendor.(*declared.Vendor).Config()
	if cfg.Inject.Secret != "mapsSecret" || cfg.Inject.Username != "acct42" || cfg.ErrorFormat != "stripe" ||
		!reflect.DeepEqual(cfg.FreeMethods, []string{"GET", "HEAD", "OPTIONS"}) {
		t.Fatalf("declared config %+v", cfg)
	}
	// A request the declaration prices: 3 waypoints × 2 alternatives × $0.001.
	req := httptest.NewRequest("POST", "/v1/routes/fast", nil)
	req.Header.Set("Content-Type", "application/json")
	est, err := rt.vendor.Estimate(req, []byte(`{"waypoints":["a","b","c"],"alternatives":2}`))
	if err != nil || !est.Known || est.Cost != 6000 {
		t.Fatalf("estimate %+v %v; want 0.006", est, err)
	}
	gw, err := app.Vendors["sms-gw"].build("sms-gw", caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if fm := gw.vendor.(*declared.Vendor).Config().FreeMethods; fm == nil || len(fm) != 0 {
		t.Fatalf("free_methods none = %#v; want an empty list", fm)
	}
	// With no free methods, a GET nothing declares is of unknown cost.
	if est, _ := gw.vendor.Estimate(httptest.NewRequest("GET", "/status", nil), nil); est.Known {
		t.Fatalf("GET with free_methods none: %+v", est)
	}
}

// TestAdaptDeclaredMissingSecret: a declared vendor with its secret unset
// is provisioned with missing set.
func TestAdaptDeclaredMissingSecret(t *testing.T) {
	got, err := adaptVendors(t, `
		vendor llm {
			secret_key {env.KB_TEST_UNSET_LLM}
		}`)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := loadApp(t, got).Vendors["llm"].build("llm", caddy.NewReplacer())
	if err != nil || rt.missing != "secret_key" || rt.vendor.Name() != "llm" {
		t.Fatalf("%v %+v", err, rt)
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

// TestBuildErrors: the same checks hold for a JSON config that never went
// through the Caddyfile.
func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name, vendor, json, want string
	}{
		{"field of another kind", "twilio", `{"secret_key":"x"}`, "secret_key not used by a twilio vendor"},
		{"fields of another kind", "stripe", `{"per_email_usd":1,"endpoints":[{"match":"GET /x"}]}`, "per_email_usd, endpoints not used by a stripe vendor"},
		{"unknown kind", "paypal", `{"kind":"paypal"}`, `unknown vendor kind "paypal"`},
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
			vc := new(VendorConfig)
			err := json.Unmarshal([]byte(c.json), vc)
			if err == nil {
				_, err = vc.build(c.vendor, caddy.NewReplacer())
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want it to contain %q", err, c.want)
			}
		})
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
