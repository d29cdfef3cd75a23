package keyapi

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// resolveEnv is a Handler on a real embedded ledger holding one key with
// an unknown $10 call, a $3 call still in flight and a settled one.
type resolveEnv struct {
	*env
	ledger                     ledger.Store
	keyID                      string
	unknown, inFlight, settled string
}

func newResolveEnv(t *testing.T) *resolveEnv {
	t.Helper()
	ctx := context.Background()
	store, err := ledger.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &resolveEnv{ledger: store, keyID: "vkResolve0000000000001"}
	e.env = newEnv(t, func(c *Config) { c.Store = store; c.StaleAfter = 15 * time.Minute })
	capUSD := 100 * money.PerDollar
	if err := store.CreateKey(ctx, ledger.Key{ID: e.keyID, Hash: ledger.HashSecret("s"), Vendor: "stripe", TotalCap: &capUSD,
		AllowedEndpoints: []string{"POST /v1/payment_intents"}, RunLabel: "resolve-run", CreatedAt: testNow, ExpiresAt: testNow.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	reserve := func(id string, usd int64) {
		if _, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: id, KeyID: e.keyID, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: money.Micros(usd) * money.PerDollar, Now: testNow}); err != nil {
			t.Fatal(err)
		}
	}
	e.unknown, e.inFlight, e.settled = "clUnknown0000000000001", "clInFlight000000000001", "clSettled0000000000001"
	reserve(e.unknown, 10)
	reserve(e.inFlight, 3)
	reserve(e.settled, 2)
	if err := store.MarkUnknown(ctx, e.unknown, ledger.Settlement{StatusCode: 502, Outcome: ledger.OutcomeUpstreamError, Now: testNow}); err != nil {
		t.Fatal(err)
	}
	if err := store.Settle(ctx, e.settled, ledger.Settlement{StatusCode: 200, Cost: 2 * money.PerDollar, Now: testNow}); err != nil {
		t.Fatal(err)
	}
	e.now = testNow.Add(time.Minute)
	return e
}

func (e *resolveEnv) usage() ledger.KeyUsage {
	u, err := e.ledger.GetKey(context.Background(), e.keyID, e.now)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func TestResolveByTheBootstrapAdmin(t *testing.T) {
	e := newResolveEnv(t)
	// A cost above the $10 reservation is recorded as the vendor says.
	rec := e.do("POST", "/vault/calls/"+e.unknown+"/resolve", `{"cost_usd":12.5,"reason":"charge seen in the Stripe dashboard"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("resolve: %d %s", rec.Code, rec.Body)
	}
	var got callView
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.CostState != ledger.CostSettled || got.CostUSD != 12500000 || got.ResolvedBy == nil || *got.ResolvedBy != BootstrapTokenID ||
		got.ResolveReason == nil || *got.ResolveReason != "charge seen in the Stripe dashboard" ||
		got.ResolvedAt == nil || *got.ResolvedAt != formatTime(e.now.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("resolved call = %s", rec.Body)
	}
	if u := e.usage(); u.Spent != 14500000 || u.Reserved != 3*money.PerDollar {
		t.Fatalf("usage = spent %s reserved %s; want 14.5 and 3", u.Spent, u.Reserved)
	}
	// The audit shows who, when and why.
	rec = e.do("GET", "/vault/audit?agent_run_label=resolve-run&cost_state=settled", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"resolved_by":"bootstrap"`) ||
		!strings.Contains(rec.Body.String(), `"resolve_reason":"charge seen in the Stripe dashboard"`) {
		t.Fatalf("audit: %d %s", rec.Code, rec.Body)
	}
	// Resolving it again is a conflict and changes nothing.
	rec = e.do("POST", "/vault/calls/"+e.unknown+"/resolve", `{"release":true,"reason":"again"}`)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "call_not_resolvable") {
		t.Fatalf("second resolve: %d %s", rec.Code, rec.Body)
	}
	if u := e.usage(); u.Spent != 14500000 {
		t.Fatalf("spent = %s after a refused resolve", u.Spent)
	}
}

func TestResolveOnlyUnresolvedCalls(t *testing.T) {
	e := newResolveEnv(t)
	for name, tc := range map[string]struct {
		id     string
		status int
	}{
		"in flight": {e.inFlight, http.StatusConflict},
		"settled":   {e.settled, http.StatusConflict},
		"no such":   {"clNoSuchCall0000000001", http.StatusNotFound},
		"garbage":   {"not%20an%20id", http.StatusNotFound},
	} {
		rec := e.do("POST", "/vault/calls/"+tc.id+"/resolve", `{"release":true,"reason":"x"}`)
		if rec.Code != tc.status {
			t.Errorf("%s: %d %s; want %d", name, rec.Code, rec.Body, tc.status)
		}
	}
	// Once older than stale_reservation_after, the reservation a stopped
	// node left can be released.
	e.now = testNow.Add(16 * time.Minute)
	rec := e.do("POST", "/vault/calls/"+e.inFlight+"/resolve", `{"release":true,"reason":"node died; not in Stripe"}`)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"cost_state":"released"`) {
		t.Fatalf("stale resolve: %d %s", rec.Code, rec.Body)
	}
	if u := e.usage(); u.Reserved != 10*money.PerDollar {
		t.Fatalf("reserved = %s; want only the unknown $10", u.Reserved)
	}
}

func TestResolveValidation(t *testing.T) {
	e := newResolveEnv(t)
	for body, field := range map[string]string{
		`{"reason":"x"}`: "cost_usd",
		`{"cost_usd":1,"release":true,"reason":"x"}`: "release",
		`{"cost_usd":-1,"reason":"x"}`:               "cost_usd",
		`{"cost_usd":1.0000001,"reason":"x"}`:        "cost_usd",
		`{"cost_usd":1}`:                             "reason",
		`{"release":true,"reason":"  "}`:             "reason",
		`{"release":true,"reason":"a\nb"}`:           "reason",
		`{"release":true,"reason":"x","who":"me"}`:   "who",
	} {
		rec := e.do("POST", "/vault/calls/"+e.unknown+"/resolve", body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s; want a 400 on %s", body, rec.Code, rec.Body, field)
		}
	}
	if rec := e.do("GET", "/vault/calls/probe/resolve", ""); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
		t.Fatalf("GET: %d %v", rec.Code, rec.Header())
	}
	if rec := e.doAuth("POST", "/vault/calls/"+e.unknown+"/resolve", `{"release":true,"reason":"x"}`, "Bearer wrong"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", rec.Code)
	}
	if u := e.usage(); u.Reserved != 13*money.PerDollar || u.Spent != 2*money.PerDollar {
		t.Fatalf("refused resolves moved money: spent %s reserved %s", u.Spent, u.Reserved)
	}
}
