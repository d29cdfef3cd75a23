package gate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// fakeVendor prices every call at a fixed amount and fails Authorize with
// the error it is given.
type fakeVendor struct {
	authErr error
}

func (fakeVendor) Name() string { return "fake" }

func (fakeVendor) Credential(r *http.Request) (string, bool) { return vendors.BearerToken(r) }

func (v fakeVendor) Authorize(r *http.Request) error { return v.authErr }

func (fakeVendor) Estimate(*http.Request, []byte) (vendors.Estimate, error) {
	return vendors.Estimate{Cost: 250_000, Known: true}, nil
}

func (fakeVendor) Settle(_ *http.Request, status int, _ http.Header, _ []byte, est vendors.Estimate) vendors.Result {
	return vendors.Result{Decision: vendors.StatusDecision(status), Cost: est.Cost}
}

func (fakeVendor) WriteError(w http.ResponseWriter, e *vendors.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": e.Code, "message": e.Message})
}

const testSecret = "kbGateTestSecret0123456789abcdef"

// newTestGate returns a gate on a fresh SQLite ledger holding one key of
// the fake vendor, capped at $1 and allowed POST /send.
func newTestGate(t *testing.T, v vendors.Vendor) (*Gate, ledger.Store) {
	t.Helper()
	ctx := context.Background()
	store, err := ledger.Open(ctx, "sqlite:"+t.TempDir()+"/l.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	limit := money.PerDollar
	now := time.Now().UTC()
	if err := store.CreateKey(ctx, ledger.Key{
		ID: "vkGateTest0000000000001", Hash: ledger.HashSecret(testSecret), Vendor: "fake",
		TotalCap: &limit, AllowedEndpoints: []string{"POST /send"}, RunLabel: "gate-test",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	keys, err := ledger.NewKeyCache(store, 0, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	g, err := New(Config{Vendor: v, Store: store, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return g, store
}

// TestAuthorizeFailureReleases: when the vendor cannot rewrite a call for
// upstream, nothing is forwarded, the reservation is released (not kept as
// unknown), and the refusal is the vendor's own error when it gave one.
func TestAuthorizeFailureReleases(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		status     int
		code, text string
	}{
		{"vendor error", &vendors.Error{Status: http.StatusNotFound, Code: "keybrake_bad_path", Message: "No account in this path."},
			http.StatusNotFound, "keybrake_bad_path", "No account in this path."},
		{"wrapped vendor error", errors.Join(errors.New("rewriting"), &vendors.Error{Status: http.StatusBadRequest, Code: "keybrake_key_in_url", Message: "No key in URLs."}),
			http.StatusBadRequest, "keybrake_key_in_url", "No key in URLs."},
		{"plain error", errors.New("cannot rewrite this call"),
			http.StatusBadRequest, "keybrake_bad_request", "cannot rewrite this call"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, store := newTestGate(t, fakeVendor{authErr: c.err})
			req := httptest.NewRequest(http.MethodPost, "/send", strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+testSecret)
			rec := httptest.NewRecorder()
			forwarded := false
			err := g.ServeHTTP(rec, req, func(http.ResponseWriter, *http.Request) error {
				forwarded = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if forwarded {
				t.Fatal("the call was forwarded")
			}
			var body map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != c.status || body["code"] != c.code || body["message"] != c.text {
				t.Fatalf("answer = %d %s; want %d %s %q", rec.Code, rec.Body.String(), c.status, c.code, c.text)
			}
			if rec.Header().Get(HeaderCallID) == "" {
				t.Error("no call id on the refusal")
			}

			ctx := context.Background()
			k, err := store.GetKey(ctx, "vkGateTest0000000000001", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if k.Reserved != 0 || k.Spent != 0 {
				t.Fatalf("key after the refusal: reserved %s, spent %s; want both 0", k.Reserved, k.Spent)
			}
			calls, _, err := store.Audit(ctx, ledger.AuditFilter{RunLabel: "gate-test"})
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) != 1 {
				t.Fatalf("%d calls recorded; want 1", len(calls))
			}
			got := calls[0]
			if got.CostState != ledger.CostReleased || got.Cost != 0 || got.StatusCode != c.status ||
				got.Outcome != ledger.OutcomeBadRequest || got.FinishedAt == nil {
				t.Fatalf("call record %+v; want released, cost 0, status %d, outcome bad_request", got, c.status)
			}
			if got.Reserved != 250_000 {
				t.Errorf("reserved = %s; want the estimate, 0.25", got.Reserved)
			}
		})
	}
}
