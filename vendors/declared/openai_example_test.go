package declared

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

func TestOpenAIChatExample(t *testing.T) {
	v, err := New(OpenAIChatExample("sk-real-openai"))
	if err != nil {
		t.Fatal(err)
	}
	// 14 + 19 = 33 characters of content → ceil(33/4) = 9 input tokens.
	reqBody := `{"model":"gpt-4o-mini","max_tokens":100,"messages":[
		{"role":"system","content":"You are terse."},
		{"role":"user","content":"Hello, how are you?"}]}`
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(reqBody))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+vaultKey)
	body, _ := io.ReadAll(r.Body)

	est, err := v.Estimate(r, body)
	if err != nil {
		t.Fatal(err)
	}
	// 100 × $0.0000006 = $0.00006 = 60 µ$; 9 × $0.00000015 = 1.35 µ$ → 2 µ$.
	if want := money.Micros(60 + 2); !est.Known || est.Cost != want {
		t.Fatalf("estimate = %+v; want %v", est, want)
	}

	// Without max_tokens the default of 4096 applies; n multiplies output.
	r2 := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	r2.Header.Set("Content-Type", "application/json")
	est2, _ := v.Estimate(r2, []byte(`{"model":"m","n":2,"max_completion_tokens":50,"messages":[{"role":"user","content":[{"type":"text","text":"abcd"}]}]}`))
	// 50 × 2 × 0.6 µ$ = 60 µ$; "text"+"abcd" = 8 chars → 2 tokens × 0.15 µ$ → 1 µ$.
	if !est2.Known || est2.Cost != 61 {
		t.Fatalf("estimate with n and max_completion_tokens = %+v; want 61", est2)
	}
	est3, _ := v.Estimate(r2, []byte(`{"model":"m","messages":[]}`))
	if !est3.Known || est3.Cost != 4096*6/10+1 { // 2457.6 µ$ → 2458
		t.Fatalf("estimate with default max tokens = %+v", est3)
	}

	if err := v.Authorize(r); err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("Authorization") != "Bearer sk-real-openai" {
		t.Fatalf("upstream Authorization = %q", r.Header.Get("Authorization"))
	}
	assertNoTrace(t, r, vaultKey)

	resp := `{"id":"chatcmpl-abc123","object":"chat.completion","model":"gpt-4o-mini-2024-07-18",
		"choices":[{"index":0,"message":{"role":"assistant","content":"Fine."},"finish_reason":"stop"}],
		"usage":{"prompt_tokens":27,"completion_tokens":3,"total_tokens":30}}`
	got := v.Settle(r, 200, http.Header{"Content-Type": {"application/json"}}, []byte(resp), est)
	// 27 × 0.15 = 4.05 µ$ → 5; 3 × 0.6 = 1.8 µ$ → 2.
	if got.Decision != vendors.DecisionSettle || got.Cost != 7 || got.TxnID != "chatcmpl-abc123" {
		t.Fatalf("settle = %+v", got)
	}
	// Exact products need no rounding: 1000 prompt and 500 completion tokens.
	got = v.Settle(r, 200, nil, []byte(`{"id":"c2","usage":{"prompt_tokens":1000,"completion_tokens":500}}`), est3)
	if got.Cost != 150+300 {
		t.Fatalf("settle exact = %+v", got)
	}
	// A 429 from OpenAI itself moved no money.
	if got := v.Settle(r, 429, nil, []byte(`{"error":{}}`), est); got.Decision != vendors.DecisionRelease {
		t.Fatalf("429 = %+v", got)
	}
}
