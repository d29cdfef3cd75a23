package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/money"
)

// The findings of issue 17 (parts 2 to 4, and PATCH expiry and Slack
// escaping of part 5), each through a real Caddy node (bin/caddy) in front
// of the simulated vendors and an OpenAI-compatible fake, on the embedded
// ledger and on Postgres.

// issue17OpenAI is the docs/vendors.md OpenAI example, on the fake.
const issue17OpenAI = `
		vendor openai {
			secret_key ` + openaiRealKey + `
			errors json
			unknown_cost deny
			endpoint POST /v1/chat/completions {
				estimate field max_completion_tokens|max_tokens price 0.0000006 default 4096 times n bound
				estimate chars messages.*.content price 0.00000015 per 4
				settle txn_id id
				settle field usage.prompt_tokens price 0.00000015
				settle field usage.completion_tokens price 0.0000006
			}
		}`

// fakeLLM is an OpenAI-compatible chat API that writes up to 16,384
// completion tokens: no more than the request's max_completion_tokens (or
// max_tokens) when it honours the bound, as OpenAI documents, and 16,384
// whatever the request says when it does not (a misbehaving vendor, or a
// model whose bound leaves some tokens out). It bills prompt tokens at
// $0.15 and completion tokens at $0.60 per million, and records what it
// billed and the bodies it received.
type fakeLLM struct {
	srv *httptest.Server

	mu     sync.Mutex
	honour bool
	answer int64 // completion tokens it writes unbounded; 0: llmAnswerTokens
	nanos  int64 // billed, in nano-dollars
	bodies []string
}

const llmAnswerTokens = 16_384

func newFakeLLM(t *testing.T) *fakeLLM {
	f := &fakeLLM{honour: true}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+openaiRealKey || r.URL.Path != "/v1/chat/completions" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}`)
		return
	}
	var req struct {
		MaxCompletion *int64 `json:"max_completion_tokens"`
		Max           *int64 `json:"max_tokens"`
		N             *int64 `json:"n"`
		Messages      []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"We could not parse the JSON body of your request.","type":"invalid_request_error"}}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, string(b))
	completion := f.answer
	if completion == 0 {
		completion = llmAnswerTokens
	}
	if f.honour {
		n := int64(1)
		if req.N != nil {
			n = *req.N
		}
		for _, bound := range []*int64{req.MaxCompletion, req.Max} {
			if bound != nil {
				completion = min(completion, *bound*n)
				break
			}
		}
	}
	var chars int64
	for _, m := range req.Messages {
		chars += int64(len([]rune(m.Content)))
	}
	prompt := (chars + 3) / 4
	f.nanos += prompt*150 + completion*600
	fmt.Fprintf(w, `{"id":"chatcmpl-%d","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"…"},"finish_reason":"length"}],`+
		`"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, len(f.bodies), prompt, completion, prompt+completion)
}

func (f *fakeLLM) reset(honour bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.honour, f.answer, f.nanos, f.bodies = honour, 0, 0, nil
}

// behave sets how the next answers are written.
func (f *fakeLLM) behave(honour bool, answer int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.honour, f.answer = honour, answer
}

// billed is what the fake billed, rounded up to micro-dollars.
func (f *fakeLLM) billed() money.Micros {
	f.mu.Lock()
	defer f.mu.Unlock()
	return money.Micros((f.nanos + 999) / 1000)
}

func (f *fakeLLM) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

// slackHooks receives Slack-format webhooks.
type slackHooks struct {
	srv   *httptest.Server
	texts chan string
}

func newSlackHooks(t *testing.T) *slackHooks {
	h := &slackHooks{texts: make(chan string, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		h.texts <- m["text"]
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// issue17Env is what every case of TestCapFindingsIssue17 can reach.
type issue17Env struct {
	c     capNode
	sim   *simvendor.Sim
	llm   *fakeLLM
	hooks *slackHooks
}

func (e issue17Env) chat(t *testing.T, k capKey, target, ct, body string, hdr ...string) capResponse {
	h := http.Header{"Content-Type": {ct}}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return e.c.do(t, k, capRequest{vendor: "openai", method: http.MethodPost, path: "/openai" + target, header: h, body: body})
}

var openaiAll = []string{"POST /v1/chat/completions", "GET /v1/models"}

func TestCapFindingsIssue17(t *testing.T) {
	for _, ledgerKind := range []string{"sqlite", "postgres"} {
		t.Run(ledgerKind, func(t *testing.T) {
			e := issue17Env{sim: newSim(), llm: newFakeLLM(t), hooks: newSlackHooks(t)}
			globals := issue17OpenAI + fmt.Sprintf(`
		webhook slackops {
			url %s
			secret whsec_issue17
			format slack
			events key.revoked
		}
		webhook_delivery {
			interval 1s
			min_backoff 1s
			max_backoff 2s
		}`, e.hooks.srv.URL)
			routes := fmt.Sprintf(`	handle_path /openai/* {
		keybrake openai
		reverse_proxy %s
	}`, e.llm.srv.URL)
			e.c = startCapNode(t, e.sim, ledgerOfKind(t, ledgerKind), globals, routes)
			for _, cc := range issue17Cases {
				t.Run(cc.name, func(t *testing.T) {
					e.sim.Reset()
					e.llm.reset(true)
					cc.run(t, e)
				})
			}
		})
	}
}

var issue17Cases = []struct {
	name string
	run  func(t *testing.T, e issue17Env)
}{
	// Part 2: one email to 150 recipients that is sent and 99 one-recipient
	// emails that fail cost 150 emails, not the batch's average.
	{"2/resend-permissive-batch-settles-per-email", func(t *testing.T, e issue17Env) {
		cap := usdOf("1") // 1,111 emails at $0.0009
		k := e.c.issue(t, capSpec{vendor: "resend", total: cap, endpoint: resendAll})
		big := `{"from":"a@example.com","to":[` + addresses("to", 50) + `],"cc":[` + addresses("cc", 50) +
			`],"bcc":[` + addresses("bcc", 50) + `],"subject":"s","html":"x"}`
		failing := strings.Repeat(`,{"from":"a@example.com","to":"z@example.com","html":"no subject"}`, 99)
		batch := "[" + big + failing + "]"
		sent := 0
		for i := range 20 {
			r := e.c.do(t, k, resendPost("/emails/batch", batch, "x-batch-validation", "permissive"))
			if r.status == 429 {
				break
			}
			if r.status != 200 || !strings.Contains(r.body, `"index":99`) {
				t.Fatalf("batch %d: %s", i, r)
			}
			sent++
		}
		// Each batch reserves $0.2241 (249 emails) and settles at $0.135
		// (150): six go out ($0.81), and the seventh does not fit the $0.19
		// left. Settled as an average ($0.00135), batches would go on.
		if sent != 6 {
			t.Errorf("%d batches sent; want 6", sent)
		}
		if got, want := e.c.counted(t, k), money.Micros(sent*150*900); got != want {
			t.Errorf("counted %s; want %s (150 emails a batch)", got, want)
		}
		wantWithinCap(t, e.c, e.sim, k, *cap)
	}},

	// Part 3: without max_tokens the forwarded request carries the bound the
	// reservation covers, so 16,384 tokens cannot be written on a $0.003 key.
	{"3/declared-bound-written", func(t *testing.T, e issue17Env) {
		cap := usdOf("0.003")
		k := e.c.issue(t, capSpec{vendor: "openai", total: cap, endpoint: openaiAll})
		msg := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Write a very long story."}]}`
		wantStatus(t, "chat without max_tokens", e.chat(t, k, "/v1/chat/completions", "application/json", msg), 200, "chatcmpl-")
		got := e.llm.received()
		if len(got) != 1 || !strings.Contains(got[0], `"max_completion_tokens":4096`) {
			t.Fatalf("forwarded %q; want max_completion_tokens 4096", got)
		}
		// 4096 × 0.6 + 6 × 0.15 = 2458.5 µ$: 542 µ$ left, less than the
		// next call's 2459: it reserves what is left and is bound to it.
		r := e.chat(t, k, "/v1/chat/completions", "application/json", strings.Replace(msg, `"messages"`, `"max_tokens":100000,"messages"`, 1))
		wantStatus(t, "chat with max_tokens 100000", r, 200, "chatcmpl-")
		if got = e.llm.received(); len(got) != 2 || !strings.Contains(got[1], `"max_tokens":900,`) {
			t.Fatalf("forwarded %q; want max_tokens lowered to 900", got)
		}
		wantLLMWithinCap(t, e, k, *cap)
	}},

	// Part 3: a vendor that answers more than asked settles at the
	// reservation, never above it.
	{"3/declared-answer-above-reservation", func(t *testing.T, e issue17Env) {
		e.llm.reset(false)
		cap := usdOf("0.003")
		k := e.c.issue(t, capSpec{vendor: "openai", total: cap, endpoint: openaiAll})
		msg := `{"model":"gpt-4o-mini","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`
		wantStatus(t, "chat", e.chat(t, k, "/v1/chat/completions", "application/json", msg), 200, "chatcmpl-")
		// Reserved 1000 × 0.6 + 1 = 601 µ$; the answer says 16,384 tokens.
		if got := e.c.counted(t, k); got != 601 {
			t.Errorf("counted %s; want the reservation, 0.000601", got)
		}
		// The finding itself: no max_tokens, a $0.003 key, 16,384 tokens
		// answered. The request went out bound to 4096 and the key counts
		// its reservation, 2459 µ$, not $0.0098.
		k = e.c.issue(t, capSpec{vendor: "openai", total: cap, endpoint: openaiAll})
		msg = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Write a very long story."}]}`
		wantStatus(t, "chat without max_tokens", e.chat(t, k, "/v1/chat/completions", "application/json", msg), 200, "chatcmpl-")
		if got := e.llm.received(); len(got) != 2 || !strings.Contains(got[1], `"max_completion_tokens":4096`) {
			t.Errorf("forwarded %q; want max_completion_tokens 4096", got)
		}
		if got := e.c.counted(t, k); got != 2459 {
			t.Errorf("counted %s; want the reservation, 0.002459", got)
		}
	}},

	// Part 4: a request a declared vendor could read another way is
	// refused in its format, before anything is forwarded.
	{"4/declared-one-reading", func(t *testing.T, e issue17Env) {
		cap := usdOf("1")
		k := e.c.issue(t, capSpec{vendor: "openai", total: cap, endpoint: openaiAll})
		const js, form = "application/json", "application/x-www-form-urlencoded"
		cases := []struct{ what, target, ct, body string }{
			{"JSON sent as a form", "/v1/chat/completions", form, `{"max_tokens":100000,"messages":[]}`},
			{"max_tokens in the query", "/v1/chat/completions?max_tokens=100000", js, `{"max_tokens":1,"messages":[]}`},
			{"max_tokens twice", "/v1/chat/completions", js, `{"max_tokens":100000,"max_tokens":1,"messages":[]}`},
			{"both alternatives", "/v1/chat/completions", js, `{"max_completion_tokens":1,"max_tokens":100000,"messages":[]}`},
		}
		for _, c := range cases {
			wantRefusedJSON(t, c.what, e.chat(t, k, c.target, c.ct, c.body))
		}
		free := capRequest{vendor: "openai", method: http.MethodGet, path: "/openai/v1/models",
			header: http.Header{"X-Http-Method-Override": {"POST"}}}
		wantRefusedJSON(t, "X-HTTP-Method-Override on a free GET", e.c.do(t, k, free))
		if got := e.llm.received(); len(got) != 0 {
			t.Errorf("forwarded %q", got)
		}
		if got := e.c.counted(t, k); got != 0 {
			t.Errorf("counted %s", got)
		}
	}},

	// Part 4 on the built-in vendors: method overrides, JSON sent as a
	// form, a priced field in the query string or given twice.
	{"4/built-in-one-reading", func(t *testing.T, e issue17Env) {
		cap := usdOf("10")
		sk := e.c.issue(t, capSpec{vendor: "stripe", total: cap, endpoint: []string{"POST /v1/payment_intents", "GET /v1/customers/*"}})
		for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
			r := e.c.do(t, sk, capRequest{vendor: "stripe", method: "GET", path: "/v1/customers/cus_1", header: http.Header{h: {"POST"}}})
			wantStatus(t, "stripe "+h, r, 400, `"type":"invalid_request_error"`)
		}
		r := e.c.do(t, sk, capRequest{vendor: "stripe", method: "POST", path: "/v1/payment_intents",
			header: formHeader(), body: `{"amount":900,"currency":"usd"}`})
		wantStatus(t, "stripe JSON as a form", r, 400, "keybrake_ambiguous_request")
		r = e.c.do(t, sk, capRequest{vendor: "stripe", method: "POST", path: "/v1/payment_intents?currency=usd",
			header: formHeader(), body: form("amount", "900")})
		wantStatus(t, "stripe parameter in the query", r, 400, "keybrake_ambiguous_request")
		r = e.c.do(t, sk, capRequest{vendor: "stripe", method: "POST", path: "/v1/payment_intents",
			header: formHeader(), body: "amount=1&amount=900&currency=usd"})
		wantStatus(t, "stripe amount twice", r, 400, "more than once")

		tk := e.c.issue(t, capSpec{vendor: "twilio", total: cap, endpoint: []string{"POST /2010-04-01/Accounts/*/Messages.json", "GET /2010-04-01/Accounts/*/Messages.json"}})
		messages := "/2010-04-01/Accounts/" + simTwilioSID + "/Messages.json"
		r = e.c.do(t, tk, capRequest{vendor: "twilio", method: "GET", path: messages, header: http.Header{"X-Http-Method-Override": {"POST"}}})
		wantStatus(t, "twilio method override", r, 400, `"more_info"`)
		r = e.c.do(t, tk, capRequest{vendor: "twilio", method: "POST", path: messages, header: formHeader(),
			body: `{"To":"+15551234567","From":"+15550000000","Body":"hi"}`})
		wantStatus(t, "twilio JSON as a form", r, 400, `"status":400`)

		rk := e.c.issue(t, capSpec{vendor: "resend", total: cap, endpoint: resendAll})
		one := `{"from":"a@example.com","to":"b@example.com","subject":"s","html":"x"}`
		r = e.c.do(t, rk, capRequest{vendor: "resend", method: "POST", path: "/emails?to=" + strings.Repeat("c@example.com,", 40) + "d@example.com",
			header: jsonHeader(), body: one})
		wantStatus(t, "resend to in the query", r, 400, `"statusCode":400`)
		r = e.c.do(t, rk, capRequest{vendor: "resend", method: "GET", path: "/emails/em_1", header: http.Header{"X-Method-Override": {"POST"}}})
		wantStatus(t, "resend method override", r, 400, `"statusCode":400`)
		for _, v := range []string{"stripe", "twilio", "resend"} {
			if n := e.sim.Requests(v); n != 0 {
				t.Errorf("%d requests reached %s", n, v)
			}
		}
	}},

	// Part 5: PATCH expires_in does not revive an expired key.
	{"5/patch-does-not-revive-expired", func(t *testing.T, e issue17Env) {
		k := issueKey(t, e.c.n, map[string]any{"vendor": "stripe", "total_usd_cap": 1, "expires_in": "1s",
			"allowed_endpoints": []string{"POST /v1/payment_intents"}, "agent_run_label": "cap/expiring"})
		for i := 0; getKey(t, e.c.n, k.KeyID).Status != "expired"; i++ {
			if i > 100 {
				t.Fatal("the key never expired")
			}
			time.Sleep(100 * time.Millisecond)
		}
		var out map[string]any
		if code := apiCall(t, e.c.n, "PATCH", "/vault/keys/"+k.KeyID, map[string]any{"expires_in": "1h"}, &out); code != http.StatusConflict {
			t.Fatalf("PATCH an expired key: %d %v; want 409", code, out)
		}
		if st := getKey(t, e.c.n, k.KeyID).Status; st != "expired" {
			t.Fatalf("status after PATCH: %s", st)
		}
	}},

	// Part 5: an issuer's PATCHes never keep a key alive past issue +
	// max_ttl.
	{"5/patch-within-max-ttl", func(t *testing.T, e issue17Env) {
		var tok struct {
			Token string `json:"token"`
		}
		policy := map[string]any{"vendors": []string{"stripe"}, "max_ttl": "2h", "run_label_prefix": "cap/"}
		if code := apiCall(t, e.c.n, "POST", "/vault/tokens", map[string]any{"name": "issuer-17-" + randAlnum(6), "role": "issuer", "policy": policy}, &tok); code != http.StatusCreated {
			t.Fatalf("token: %d", code)
		}
		var k issuedKey
		if code := apiCallAs(t, e.c.n, tok.Token, "POST", "/vault/keys", map[string]any{"vendor": "stripe", "total_usd_cap": 1,
			"expires_in": "1h", "agent_run_label": "cap/ttl"}, &k); code != http.StatusCreated {
			t.Fatalf("issue: %d", code)
		}
		var out map[string]any
		if code := apiCallAs(t, e.c.n, tok.Token, "PATCH", "/vault/keys/"+k.KeyID, map[string]any{"expires_in": "1h"}, &out); code != http.StatusOK {
			t.Fatalf("PATCH within max_ttl: %d %v", code, out)
		}
		// 2h from now is within max_ttl from now, but past 2h from issue.
		code := apiCallAs(t, e.c.n, tok.Token, "PATCH", "/vault/keys/"+k.KeyID, map[string]any{"expires_in": "2h"}, &out)
		if errObj, _ := out["error"].(map[string]any); code != http.StatusForbidden || errObj["code"] != "policy_violation" {
			t.Fatalf("PATCH past issue + max_ttl: %d %v; want 403 policy_violation", code, out)
		}
	}},

	// Part 5: a run label cannot mention a channel or hide a link in a
	// Slack alert.
	{"5/slack-text-escaped", func(t *testing.T, e issue17Env) {
		label := "cap/<!channel> <http://evil.example|ok> & co"
		k := issueKey(t, e.c.n, map[string]any{"vendor": "stripe", "total_usd_cap": 1, "agent_run_label": label,
			"allowed_endpoints": []string{"POST /v1/payment_intents"}})
		if code := apiCall(t, e.c.n, "DELETE", "/vault/keys/"+k.KeyID, nil, nil); code != http.StatusOK {
			t.Fatalf("revoke: %d", code)
		}
		deadline := time.After(30 * time.Second)
		for {
			select {
			case text := <-e.hooks.texts:
				if !strings.Contains(text, k.KeyID) {
					continue // another case's key
				}
				if strings.ContainsAny(text, "<>") || !strings.Contains(text, "&lt;!channel&gt; &lt;http://evil.example|ok&gt; &amp; co") {
					t.Fatalf("slack text %q", text)
				}
				return
			case <-deadline:
				t.Fatal("no Slack alert for the revocation")
			}
		}
	}},
}

// ledgerOfKind is a fresh ledger: "sqlite", or "postgres" (skipped, or
// failed under KEYBRAKE_REQUIRE_E2E, without one).
func ledgerOfKind(t *testing.T, kind string) string {
	need(t, kind == "postgres")
	if kind == "postgres" {
		return freshDatabase(t)
	}
	return sqliteLedger(t)
}

// wantRefusedJSON checks a 400 in the "json" error format with the
// ambiguous-request code.
func wantRefusedJSON(t *testing.T, what string, r capResponse) {
	t.Helper()
	var out struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if r.status != 400 || json.Unmarshal([]byte(r.body), &out) != nil || out.Error.Code != "keybrake_ambiguous_request" {
		t.Errorf("%s: %s; want 400 keybrake_ambiguous_request", what, r)
	}
}

// wantLLMWithinCap checks the fake billed no more than the cap and the
// ledger counted at least what it billed.
func wantLLMWithinCap(t *testing.T, e issue17Env, k capKey, cap money.Micros) {
	t.Helper()
	billed, counted := e.llm.billed(), e.c.counted(t, k)
	if billed > cap || counted > cap || counted < billed {
		t.Errorf("billed %s, counted %s on a %s cap", billed, counted, cap)
	}
}

// addresses is n recipient addresses as JSON strings.
func addresses(prefix string, n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`"%s%d@example.com"`, prefix, i)
	}
	return strings.Join(out, ",")
}
