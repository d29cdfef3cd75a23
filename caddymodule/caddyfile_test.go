package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	// The standard directives (handle_path, reverse_proxy…) for the adapter.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// adapt turns a Caddyfile into Caddy's JSON, as `caddy adapt` does.
func adapt(t *testing.T, input string) (map[string]any, error) {
	t.Helper()
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	out, _, err := adapter.Adapt([]byte(input), nil)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapted JSON: %v\n%s", err, out)
	}
	return cfg, nil
}

func TestAdaptGlobalOption(t *testing.T) {
	cfg, err := adapt(t, `{
	keybrake {
		ledger {env.KEYBRAKE_LEDGER}
		api_token {env.KEYBRAKE_API_TOKEN}
		api_token second-token
		max_ttl 48h
		default_ttl 30m
		key_cache_ttl 2s
		stale_reservation_after 30m
		retain_calls 400d
		vendor stripe {
			secret_key {env.STRIPE_SECRET_KEY}
			unknown_cost reserve 25.50
			rate jpy 0.0067
			rate EUR 1.08
		}
	}
}
:8080 {
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	app := cfg["apps"].(map[string]any)["keybrake"]
	got, _ := json.Marshal(app)
	want := `{"api_tokens":["{env.KEYBRAKE_API_TOKEN}","second-token"],"default_ttl":1800000000000,"key_cache_ttl":2000000000,"ledger":"{env.KEYBRAKE_LEDGER}","max_ttl":172800000000000,"retain_calls":34560000000000000,"stale_reservation_after":1800000000000,"vendors":{"stripe":{"kind":"stripe","rates":{"EUR":"1.08","jpy":"0.0067"},"secret_key":"{env.STRIPE_SECRET_KEY}","unknown_cost":"reserve","unknown_cost_usd":25.5}}}`
	if string(got) != want {
		t.Fatalf("keybrake app =\n%s\nwant\n%s", got, want)
	}
}

func TestAdaptHandlers(t *testing.T) {
	cfg, err := adapt(t, `:8080 {
	handle /vault/* {
		keybrake_api
	}
	handle_path /stripe/* {
		reverse_proxy 127.0.0.1:12111
		keybrake stripe {
			max_request_body 65536
		}
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := json.Marshal(cfg)
	out := string(s)
	for _, want := range []string{
		`{"handler":"keybrake_api"}`,
		`{"handler":"keybrake","max_request_body":65536,"vendor":"stripe"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, out)
		}
	}
	// keybrake is ordered before reverse_proxy without an order option,
	// though written after it.
	if strings.Index(out, `"handler":"keybrake"`) > strings.Index(out, `"handler":"reverse_proxy"`) {
		t.Errorf("keybrake does not run before reverse_proxy:\n%s", out)
	}
}

func TestAdaptErrors(t *testing.T) {
	cases := []struct {
		name, input, want string
	}{
		{"unknown global option", `{
	keybrake {
		ledgr sqlite:x.db
	}
}`, "unrecognized keybrake option 'ledgr'"},
		{"global option with an argument", `{
	keybrake now
}`, "wrong argument count"},
		{"ledger without a value", `{
	keybrake {
		ledger
	}
}`, "wrong argument count"},
		{"bad duration", `{
	keybrake {
		max_ttl soon
	}
}`, "invalid duration 'soon'"},
		{"negative duration", `{
	keybrake {
		key_cache_ttl -1s
	}
}`, "duration must be positive"},
		{"vendor declared twice", `{
	keybrake {
		vendor stripe
		vendor stripe
	}
}`, "vendor stripe is declared twice"},
		{"unknown vendor option", `{
	keybrake {
		vendor stripe {
			secret sk_test_x
		}
	}
}`, "unrecognized vendor option 'secret'"},
		{"bad unknown_cost", `{
	keybrake {
		vendor stripe {
			unknown_cost maybe
		}
	}
}`, "unknown_cost must be deny or reserve, not 'maybe'"},
		{"unknown_cost reserve without an amount", `{
	keybrake {
		vendor stripe {
			unknown_cost reserve
		}
	}
}`, "unknown_cost reserve needs an amount in USD"},
		{"unknown_cost reserve with a float-ish amount", `{
	keybrake {
		vendor stripe {
			unknown_cost reserve 1e3
		}
	}
}`, "unknown_cost reserve: invalid amount '1e3'"},
		{"bad rate", `{
	keybrake {
		vendor stripe {
			rate jpy -1
		}
	}
}`, "rate jpy: invalid rate '-1'"},
		{"rate without a value", `{
	keybrake {
		vendor stripe {
			rate jpy
		}
	}
}`, "rate needs a currency and dollars per unit"},
		{"bad kind", `{
	keybrake {
		vendor paypal {
			kind paypal
		}
	}
}`, `unknown vendor kind "paypal" (want declared, resend, stripe, twilio)`},
		{"keybrake without a vendor", `:8080 {
	keybrake
}`, "keybrake needs a vendor name"},
		{"keybrake with two vendors", `:8080 {
	keybrake stripe twilio
}`, "wrong argument count"},
		{"unknown keybrake handler option", `:8080 {
	keybrake stripe {
		cap 100
	}
}`, "unrecognized keybrake option 'cap'"},
		{"bad max_request_body", `:8080 {
	keybrake stripe {
		max_request_body lots
	}
}`, "invalid max_request_body 'lots'"},
		{"keybrake_api with an argument", `:8080 {
	keybrake_api now
}`, "wrong argument count"},
		{"keybrake_api with a block", `:8080 {
	keybrake_api {
		token x
	}
}`, "keybrake_api takes no options"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := adapt(t, c.input)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v; want it to contain %q", err, c.want)
			}
		})
	}
}

func TestAdaptWebhooks(t *testing.T) {
	cfg, err := adapt(t, `{
	keybrake {
		webhook ops {
			url https://hooks.example.com/keybrake
			secret {env.KEYBRAKE_WEBHOOK_SECRET}
			thresholds 50% 90
		}
		webhook chat {
			url {env.SLACK_WEBHOOK_URL}
			secret {env.KEYBRAKE_WEBHOOK_SECRET}
			format slack
			events key.cap_hit key.revoked
		}
		webhook_delivery {
			interval 1s
			min_backoff 2s
			max_backoff 1m
			give_up_after 24h
		}
	}
}
:8080 {
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	app := cfg["apps"].(map[string]any)["keybrake"]
	got, _ := json.Marshal(app)
	want := `{"webhook_delivery":{"give_up_after":86400000000000,"interval":1000000000,"max_backoff":60000000000,"min_backoff":2000000000},"webhooks":[{"name":"ops","secret":"{env.KEYBRAKE_WEBHOOK_SECRET}","thresholds":[50,90],"url":"https://hooks.example.com/keybrake"},{"events":["key.cap_hit","key.revoked"],"format":"slack","name":"chat","secret":"{env.KEYBRAKE_WEBHOOK_SECRET}","url":"{env.SLACK_WEBHOOK_URL}"}]}`
	if string(got) != want {
		t.Fatalf("keybrake app =\n%s\nwant\n%s", got, want)
	}
}

func TestAdaptWebhookErrors(t *testing.T) {
	for name, block := range map[string]string{
		"no name":         "webhook {\n url https://x.example\n secret s\n}",
		"no secret":       "webhook ops {\n url https://x.example\n}",
		"no url":          "webhook ops {\n secret s\n}",
		"bad threshold":   "webhook ops {\n url https://x.example\n secret s\n thresholds 0\n}",
		"over 100":        "webhook ops {\n url https://x.example\n secret s\n thresholds 120%\n}",
		"unknown option":  "webhook ops {\n url https://x.example\n secret s\n retries 3\n}",
		"twice":           "webhook ops {\n url https://x.example\n secret s\n}\nwebhook ops {\n url https://y.example\n secret s\n}",
		"delivery option": "webhook_delivery {\n every 1s\n}",
	} {
		_, err := adapt(t, "{\n\tkeybrake {\n"+block+"\n\t}\n}\n:8080 {\n\trespond ok\n}")
		if err == nil {
			t.Errorf("%s: adapted without an error", name)
		}
	}
}
