package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const openaiRealKey = "sk-RealOpenAIKey000000000000000001"

// openaiVendor is the worked example of docs/vendors.md, verbatim.
const openaiVendor = `
		vendor openai {
			upstream https://api.openai.com
			secret_key {env.OPENAI_API_KEY}
			credential bearer
			inject bearer
			errors json
			unknown_cost deny
			endpoint POST /v1/chat/completions {
				estimate field max_completion_tokens|max_tokens price 0.0000006 default 4096 times n bound
				estimate chars messages.*.content price 0.00000015 per 4
				estimate chars tools price 0.00000015 per 4
				settle txn_id id
				settle field usage.prompt_tokens price 0.00000015
				settle field usage.completion_tokens price 0.0000006
			}
		}`

// fakeOpenAI answers POST /v1/chat/completions like an OpenAI-compatible
// API: a completion with its usage (27 prompt and 3 completion tokens).
func fakeOpenAI(t *testing.T) *recorder {
	var n atomic.Int64
	return newFakeVendor(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+openaiRealKey {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"message":"Unknown request URL","type":"invalid_request_error","code":"unknown_url"}}`)
			return
		}
		id := fmt.Sprintf("chatcmpl-kb%04d", n.Add(1))
		fmt.Fprintf(w, `{"id":%q,"object":"chat.completion","created":1767225600,"model":"gpt-4o-mini",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello, tests."},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":27,"completion_tokens":3,"total_tokens":30}}`, id)
	})
}

// TestDeclaredOpenAIThroughKeybrake: an OpenAI-compatible API declared in
// the Caddyfile (the docs/vendors.md example) is capped like the built-in
// vendors. Each call reserves max_tokens × the output price plus the
// prompt's estimate (62 µ$) and settles from usage (7 µ$). On a 100 µ$ cap
// six calls go through whole; max_tokens is the rule's bound, so from the
// seventh (42 + 62 > 100) a call reserves what is left and goes out with
// max_tokens lowered to it, while that covers one token and the prompt
// (3 µ$): fourteen calls, and the fifteenth (98 spent) is refused with 429,
// X-Keybrake-Cap-Hit and x-should-retry: false.
func TestDeclaredOpenAIThroughKeybrake(t *testing.T) {
	need(t, false)
	fake := fakeOpenAI(t)
	caddyfile := writeCaddyfile(t, openaiVendor, `
	handle_path /openai/* {
		keybrake openai
		reverse_proxy {$OPENAI_API_BASE} {
			header_up Host {upstream_hostport}
		}
	}`)
	n := startNode(t, nodeConfig{caddyfile: caddyfile, ledger: sqliteLedger(t), env: map[string]string{
		"OPENAI_API_KEY":  openaiRealKey,
		"OPENAI_API_BASE": fake.URL,
	}})
	label := fmt.Sprintf("agent/openai-%d", time.Now().UnixNano())
	key := issueKey(t, n, map[string]any{
		"vendor":            "openai",
		"total_usd_cap":     0.0001,
		"allowed_endpoints": []string{"POST /v1/chat/completions"},
		"agent_run_label":   label,
	})
	tr := &sdkTransport{}
	hc := tr.client()
	// 33 characters of content: ⌈33 / 4⌉ = 9 input tokens.
	body := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"Say hello to the Keybrake tests!!"}]}`
	chat := func() (int, http.Header, map[string]any) {
		req, _ := http.NewRequest("POST", n.url+"/openai/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key.VaultKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, resp.Header, out
	}
	var ids []string
	for i := 1; i <= 14; i++ {
		status, _, out := chat()
		id, _ := out["id"].(string)
		if status != 200 || !strings.HasPrefix(id, "chatcmpl-") {
			t.Fatalf("call %d: %d %v", i, status, out)
		}
		ids = append(ids, id)
	}
	status, h, out := chat()
	errObj, _ := out["error"].(map[string]any)
	if status != 429 || h.Get("X-Keybrake-Cap-Hit") != "true" || h.Get("X-Should-Retry") != "false" ||
		errObj == nil || errObj["code"] != "keybrake_cap_hit" {
		t.Fatalf("15th call: %d %v %v; want 429 keybrake_cap_hit with X-Keybrake-Cap-Hit and x-should-retry: false", status, h, out)
	}
	if got := tr.count(); got != 15 {
		t.Fatalf("sent %d requests; want 15", got)
	}
	if got := fake.count("POST", "/v1/chat/completions"); got != 14 || fake.total() != 14 {
		t.Fatalf("the API got %d completions (%d requests); want 14", got, fake.total())
	}
	// The 7th reserved 58 µ$: (58 − 2) ÷ 0.6 = 93 tokens.
	if b := fake.requests()[6].Body; !strings.Contains(b, `"max_tokens":93,`) {
		t.Fatalf("7th call forwarded %s; want max_tokens lowered to 93", b)
	}
	for _, q := range fake.requests() {
		if q.Header.Get("Authorization") != "Bearer "+openaiRealKey {
			t.Fatalf("upstream Authorization %q", q.Header.Get("Authorization"))
		}
	}
	if fake.anyContains(key.VaultKey) {
		t.Fatal("the vault key reached the API")
	}

	calls := audit(t, n, label)
	groups := byOutcome(calls)
	if len(calls) != 15 || len(groups["forwarded"]) != 14 || len(groups["cap_hit"]) != 1 {
		t.Fatalf("audit = %+v; want 14 forwarded, 1 cap hit", calls)
	}
	for i, c := range groups["forwarded"][:6] {
		if c.VendorTxnID != ids[i] || c.Reserved.String() != "0.000062" || c.Cost.String() != "0.000007" ||
			c.CostState != "settled" || c.Endpoint != "POST /v1/chat/completions" || c.Vendor != "openai" {
			t.Fatalf("row %d = %+v; want %s reserved 0.000062, settled at 0.000007", i, c, ids[i])
		}
	}
	if k := getKey(t, n, key.KeyID); k.Spent.String() != "0.000098" || k.Reserved.String() != "0" || k.Calls != 14 || k.CapHits != 1 {
		t.Fatalf("key = %+v; want 0.000098 spent, 14 calls, 1 cap hit", k)
	}
	if logs := n.log(t); strings.Contains(logs, openaiRealKey) || strings.Contains(logs, key.VaultKey) {
		t.Fatal("a secret appeared in Caddy's log")
	}
}
