package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resend/resend-go/v3"
)

const resendRealKey = "re_RealResendKey000000000001"

// fakeResend answers like api.resend.com for POST /emails and POST
// /emails/batch, giving the same id to a request repeated with the same
// Idempotency-Key, as Resend does.
type fakeResend struct {
	*recorder
	mu   sync.Mutex
	idem map[string]string
}

func newFakeResend(t *testing.T) *fakeResend {
	f := &fakeResend{idem: map[string]string{}}
	f.recorder = newFakeVendor(t, f.serve)
	return f
}

func newEmailID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (f *fakeResend) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+resendRealKey {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"statusCode":401,"name":"validation_error","message":"API key is invalid"}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/emails":
		f.mu.Lock()
		id, replay := f.idem[r.Header.Get("Idempotency-Key")]
		if !replay {
			id = newEmailID()
			if k := r.Header.Get("Idempotency-Key"); k != "" {
				f.idem[k] = id
			}
		}
		f.mu.Unlock()
		fmt.Fprintf(w, `{"id":%q}`, id)
	case r.Method == http.MethodPost && r.URL.Path == "/emails/batch":
		var emails []json.RawMessage
		if err := json.Unmarshal(body, &emails); err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"statusCode":422,"name":"validation_error","message":"Invalid batch"}`)
			return
		}
		data := make([]map[string]string, len(emails))
		for i := range emails {
			data[i] = map[string]string{"id": newEmailID()}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"statusCode":404,"name":"not_found","message":"Route not found"}`)
	}
}

// TestResendThroughKeybrake runs Caddyfile.example as shipped, with only
// Resend configured, on the embedded ledger: resend-go sends emails and a
// batch through Keybrake until the key's cap, surfaced as a rate-limit
// error it does not retry; Resend gets the real key, never the vault key;
// the audit shows the email ids at recipients × $0.0009; a replay with the
// same Idempotency-Key is counted once; and Twilio, with no secrets set,
// answers 503 in Twilio's format while Resend works.
func TestResendThroughKeybrake(t *testing.T) {
	need(t, false)
	fake := newFakeResend(t)
	n := startNode(t, nodeConfig{ledger: sqliteLedger(t), env: map[string]string{
		"RESEND_API_KEY":  resendRealKey,
		"RESEND_API_BASE": fake.URL,
	}})
	label := fmt.Sprintf("windmill/resend-%d", time.Now().UnixNano())
	key := issueKey(t, n, map[string]any{
		"vendor":            "resend",
		"total_usd_cap":     0.006,
		"allowed_endpoints": []string{"POST /emails", "POST /emails/batch"},
		"agent_run_label":   label,
	})
	tr := &sdkTransport{}
	rs := resend.NewCustomClient(tr.client(), key.VaultKey)
	base, _ := url.Parse(n.url + "/resend/")
	rs.BaseURL = base
	ctx := context.Background()
	email := func(to []string, cc ...string) *resend.SendEmailRequest {
		return &resend.SendEmailRequest{From: "runs@example.com", To: to, Cc: cc, Subject: "Run " + label, Text: "Done."}
	}

	var ids []string
	// 3 recipients: $0.0027.
	sent, err := rs.Emails.SendWithContext(ctx, email([]string{"a@example.com", "b@example.com"}, "c@example.com"))
	if err != nil || sent.Id == "" {
		t.Fatalf("send 1: %v %+v", err, sent)
	}
	ids = append(ids, sent.Id)
	// A batch of two emails to one recipient each: $0.0018 ($0.0045).
	batch, err := rs.Batch.SendWithContext(ctx, []*resend.SendEmailRequest{email([]string{"d@example.com"}), email([]string{"e@example.com"})})
	if err != nil || len(batch.Data) != 2 {
		t.Fatalf("batch: %v %+v", err, batch)
	}
	batchIDs := batch.Data[0].Id + "," + batch.Data[1].Id
	// One recipient with an Idempotency-Key, twice: $0.0009 once ($0.0054).
	var idemID string
	for i := 0; i < 2; i++ {
		sent, err = rs.Emails.SendWithOptions(ctx, email([]string{"f@example.com"}), &resend.SendEmailOptions{IdempotencyKey: "run-42-report"})
		if err != nil {
			t.Fatalf("idempotent send %d: %v", i, err)
		}
		if i == 1 && sent.Id != idemID {
			t.Fatalf("replay got id %s; want %s", sent.Id, idemID)
		}
		idemID = sent.Id
	}
	// One more recipient ($0.0063) is over the $0.006 cap.
	before := tr.count()
	_, err = rs.Emails.SendWithContext(ctx, email([]string{"g@example.com"}))
	var rl *resend.RateLimitError
	if !errors.Is(err, resend.ErrRateLimit) || !errors.As(err, &rl) || !strings.Contains(rl.Message, "cap") {
		t.Fatalf("send over the cap: err = %T %v; want a *resend.RateLimitError about the cap", err, err)
	}
	if status, h := tr.last(); status != 429 || h.Get("X-Keybrake-Cap-Hit") != "true" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("cap hit answer: %d %v", status, h)
	}
	if got := tr.count() - before; got != 1 {
		t.Fatalf("resend-go sent %d requests for the refused email; want 1 (no retry)", got)
	}

	// Upstream: 2 single sends, the replay (Resend answers it itself) and
	// the batch, all with the real key and the Idempotency-Key kept.
	if got, batches := fake.count("POST", "/emails"), fake.count("POST", "/emails/batch"); got != 3 || batches != 1 || fake.total() != 4 {
		t.Fatalf("Resend got %d sends and %d batches (%d in all); want 3, 1 (4)", got, batches, fake.total())
	}
	idemSeen := 0
	for _, q := range fake.requests() {
		if q.Header.Get("Authorization") != "Bearer "+resendRealKey {
			t.Fatalf("Resend got Authorization %q", q.Header.Get("Authorization"))
		}
		if q.Header.Get("Idempotency-Key") == "run-42-report" {
			idemSeen++
		}
	}
	if idemSeen != 2 {
		t.Fatalf("Idempotency-Key reached Resend %d times; want 2", idemSeen)
	}
	if fake.anyContains(key.VaultKey) {
		t.Fatal("the vault key reached Resend")
	}

	// The audit: email ids with their costs, settled.
	calls := audit(t, n, label)
	want := map[string]string{ids[0]: "0.0027", batchIDs: "0.0018", idemID: "0.0009"}
	groups := byOutcome(calls)
	if len(calls) != 5 || len(groups["forwarded"]) != 3 || len(groups["idempotent_replay"]) != 1 || len(groups["cap_hit"]) != 1 {
		t.Fatalf("audit = %+v; want 3 forwarded, 1 replay, 1 cap hit", calls)
	}
	for _, c := range groups["forwarded"] {
		cost, ok := want[c.VendorTxnID]
		if !ok || c.Cost.String() != cost || c.Reserved.String() != cost || c.CostState != "settled" || c.StatusCode != 200 {
			t.Fatalf("forwarded row %+v; want one of %v, settled", c, want)
		}
		delete(want, c.VendorTxnID)
	}
	if r := groups["idempotent_replay"][0]; r.Cost.String() != "0" || r.IdemKey != "run-42-report" {
		t.Fatalf("replay row %+v; want cost 0", r)
	}
	if k := getKey(t, n, key.KeyID); k.Spent.String() != "0.0054" || k.Reserved.String() != "0" || k.CapHits != 1 {
		t.Fatalf("key = %+v; want 0.0054 spent, 1 cap hit", k)
	}

	// Caddyfile.example with no Twilio secrets: Twilio answers 503 in its
	// own format, on both its routes, and forwards nothing.
	for _, path := range []string{"/twilio/2010-04-01/Accounts/ACx/Messages.json", "/2010-04-01/Accounts/ACx/Messages.json"} {
		req, _ := http.NewRequest("POST", n.url+path, strings.NewReader("To=%2B14155550100&Body=hi"))
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ACx:"+key.VaultKey)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var te struct {
			Code, Status int
			Message      string
		}
		_ = json.NewDecoder(resp.Body).Decode(&te)
		resp.Body.Close()
		if resp.StatusCode != 503 || te.Code != 20503 || te.Status != 503 || !strings.Contains(te.Message, "account_sid") {
			t.Fatalf("%s without Twilio secrets: %d %+v", path, resp.StatusCode, te)
		}
	}
	if logs := n.log(t); strings.Contains(logs, resendRealKey) || strings.Contains(logs, key.VaultKey) {
		t.Fatal("a secret appeared in Caddy's log")
	}
}
