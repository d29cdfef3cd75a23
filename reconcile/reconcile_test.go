package reconcile_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors/stripe"
)

const simSecret = "sk_test_reconcile0000000000000000"

var t0 = time.Date(2031, time.May, 17, 9, 30, 0, 0, time.UTC)

// fixture is a real embedded ledger with one key, the simulated Stripe
// (which implements Stripe's search) and a reconciler on an injected clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store ledger.Store
	key   ledger.Key
	stub  string // the simulated Stripe's URL
	rc    *reconcile.Reconciler
	now   time.Time
	n     int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), now: t0}
	var err error
	f.store, err = ledger.Open(f.ctx, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	// Stripe's clock is the reconciler's; its search lags by the minute
	// Stripe documents, which the reconciler must not depend on.
	sim := simvendor.New(simvendor.Config{StripeSecretKey: simSecret, Now: func() time.Time { return f.now }})
	srv := httptest.NewServer(sim.Stripe())
	t.Cleanup(srv.Close)
	f.stub = srv.URL
	v, err := stripe.New(stripe.Config{SecretKey: simSecret, Upstream: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	capUSD := 1000 * money.PerDollar
	f.key = ledger.Key{ID: "vkReconcile00000000001", Hash: ledger.HashSecret("s"), Vendor: "stripe", TotalCap: &capUSD,
		AllowedEndpoints: []string{"POST /v1/*"}, RunLabel: "recon", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := f.store.CreateKey(f.ctx, f.key); err != nil {
		t.Fatal(err)
	}
	f.rc = &reconcile.Reconciler{Store: f.store, Finders: map[string]reconcile.Finder{"stripe": v},
		StaleAfter: 10 * time.Minute, NotFoundAfter: 2 * time.Minute, Pace: time.Microsecond,
		Now: func() time.Time { return f.now }}
	return f
}

// call reserves usd for a call started at, on path, with an idempotency
// key, and records its tag as the gate does; unknown marks it unknown as a
// lost answer does.
func (f *fixture) call(path string, usd int64, at time.Time, idem string, unknown bool) string {
	f.t.Helper()
	return f.reserve(path, usd, at, idem, unknown, fmt.Sprintf("ktRecon%d", f.n+1))
}

// untagged is call for a call that wrote no tag.
func (f *fixture) untagged(path string, usd int64, at time.Time, idem string, unknown bool) string {
	f.t.Helper()
	return f.reserve(path, usd, at, idem, unknown, "")
}

func (f *fixture) reserve(path string, usd int64, at time.Time, idem string, unknown bool, tag string) string {
	f.t.Helper()
	f.n++
	id := "clRecon" + strings.Repeat("0", 10) + string(rune('A'+f.n))
	fp := ""
	if idem != "" {
		fp = "fp-" + idem
	}
	if _, err := f.store.Reserve(f.ctx, ledger.ReserveRequest{CallID: id, KeyID: f.key.ID, Vendor: "stripe", Method: "POST",
		Path: path, Endpoint: "POST /v1/*", Estimate: money.Micros(usd) * money.PerDollar, IdempotencyKey: idem,
		Fingerprint: fp, ReplayWindow: 24 * time.Hour, Tag: tag, Now: at}); err != nil {
		f.t.Fatal(err)
	}
	if unknown {
		if err := f.store.MarkUnknown(f.ctx, id, ledger.Settlement{StatusCode: 502, Now: at}); err != nil {
			f.t.Fatal(err)
		}
	}
	return id
}

// charge makes the PaymentIntent the vendor has for a call, now: what the
// gate forwarded, with its recorded tag.
func (f *fixture) charge(callID, _ string, cents string) {
	f.t.Helper()
	form := url.Values{"amount": {cents}, "currency": {"usd"}, "confirm": {"true"}, "payment_method": {"pm_card_visa"},
		"metadata[keybrake_call_id]": {f.get(callID).Tag}}
	req, _ := http.NewRequest("POST", f.stub+"/v1/payment_intents", strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer "+simSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		f.t.Fatalf("creating the vendor's PaymentIntent: %v %v", resp, err)
	}
	resp.Body.Close()
}

func (f *fixture) get(id string) ledger.Call {
	f.t.Helper()
	calls, _, err := f.store.Audit(f.ctx, ledger.AuditFilter{KeyID: f.key.ID, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range calls {
		if c.CallID == id {
			return c
		}
	}
	f.t.Fatalf("no call %s", id)
	return ledger.Call{}
}

func (f *fixture) run() reconcile.Result {
	f.t.Helper()
	res, err := f.rc.RunOnce(f.ctx)
	if err != nil {
		f.t.Fatalf("RunOnce: %v", err)
	}
	return res
}

func TestReconcileSettlesWhatStripeHasAndReleasesTheRest(t *testing.T) {
	f := newFixture(t)
	moved := f.call("/v1/payment_intents", 10, t0, "", true)
	f.charge(moved, "", "1000")
	never := f.call("/v1/payment_intents", 7, t0, "", true)
	refund := f.untagged("/v1/refunds", 3, t0, "", true) // wrote no tag

	// Within NotFoundAfter, nothing found is not yet proof.
	f.now = t0.Add(time.Minute)
	if res := f.run(); res.Settled != 1 || res.Released != 0 {
		t.Fatalf("first run = %+v", res)
	}
	if c := f.get(moved); c.CostState != ledger.CostSettled || c.Cost != 10*money.PerDollar ||
		!strings.HasPrefix(c.VendorTxnID, "pi_") || c.ResolvedBy != reconcile.ResolvedBy || c.ResolveReason == "" {
		t.Fatalf("moved call = %+v", c)
	}
	if c := f.get(never); c.CostState != ledger.CostUnknown {
		t.Fatalf("a call not found yet was resolved early: %+v", c)
	}
	f.now = t0.Add(3 * time.Minute)
	if res := f.run(); res.Released != 1 {
		t.Fatalf("second run = %+v", res)
	}
	if c := f.get(never); c.CostState != ledger.CostReleased || c.ResolvedBy != reconcile.ResolvedBy {
		t.Fatalf("never-seen call = %+v", c)
	}
	if c := f.get(refund); c.CostState != ledger.CostUnknown {
		t.Fatalf("a call Stripe cannot be asked about = %+v; want it left unknown", c)
	}
	u, _ := f.store.GetKey(f.ctx, f.key.ID, f.now)
	if u.Spent != 10*money.PerDollar || u.Reserved != 3*money.PerDollar {
		t.Fatalf("key spent %s reserved %s; want 10 and the refund's 3", u.Spent, u.Reserved)
	}
	// Idempotent: a run more changes nothing.
	if res := f.run(); res.Settled+res.Released != 0 {
		t.Fatalf("third run = %+v", res)
	}
}

func TestReconcileStaleReservations(t *testing.T) {
	f := newFixture(t)
	crashed := f.call("/v1/payment_intents", 5, t0, "", false)
	f.charge(crashed, "", "500")
	inFlight := f.call("/v1/payment_intents", 5, t0.Add(9*time.Minute), "", false)
	f.now = t0.Add(11 * time.Minute)
	if res := f.run(); res.Settled != 1 {
		t.Fatalf("run = %+v", res)
	}
	if c := f.get(crashed); c.CostState != ledger.CostSettled || c.Cost != 5*money.PerDollar {
		t.Fatalf("stale reservation = %+v", c)
	}
	if c := f.get(inFlight); c.CostState != ledger.CostReserved {
		t.Fatalf("a reservation younger than StaleAfter was touched: %+v", c)
	}
}

// TestReconcileIdempotentAttemptsCountOnce: two attempts of one idempotent
// request, both answers lost, carry one tag; Stripe made one object, which
// is counted once.
func TestReconcileIdempotentAttemptsCountOnce(t *testing.T) {
	f := newFixture(t)
	a := f.call("/v1/payment_intents", 8, t0, "idem-1", true)
	b := f.call("/v1/payment_intents", 8, t0, "idem-1", true)
	f.charge(a, "idem-1", "800")
	f.now = t0.Add(5 * time.Minute)
	if res := f.run(); res.Settled != 2 {
		t.Fatalf("run = %+v", res)
	}
	ca, cb := f.get(a), f.get(b)
	if ca.Cost+cb.Cost != 8*money.PerDollar || ca.VendorTxnID != cb.VendorTxnID {
		t.Fatalf("attempts = %+v / %+v; want the one $8 intent counted once", ca, cb)
	}
}

func TestReconcileOneNodeAtATimeAndStops(t *testing.T) {
	f := newFixture(t)
	id := f.call("/v1/payment_intents", 4, t0, "", true)
	f.now = t0.Add(5 * time.Minute)
	f.rc.Lock = func(context.Context) (func(), bool, error) { return nil, false, nil }
	if res := f.run(); !res.Locked || res.Released != 0 {
		t.Fatalf("run without the lock = %+v", res)
	}
	if c := f.get(id); c.CostState != ledger.CostUnknown {
		t.Fatalf("a node without the lock resolved %+v", c)
	}
	held := 0
	f.rc.Lock = func(context.Context) (func(), bool, error) { held++; return func() { held-- }, true, nil }
	ticks := make(chan time.Time)
	f.rc.Ticks = ticks
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error)
	go func() { done <- f.rc.Run(ctx) }()
	ticks <- f.now
	ticks <- f.now // the second tick is taken once the first run is over
	if c := f.get(id); c.CostState != ledger.CostReleased {
		t.Fatalf("after a run: %+v", c)
	}
	cancel()
	if err := <-done; err != context.Canceled || held != 0 {
		t.Fatalf("Run = %v, lock held %d", err, held)
	}
}

// TestReconcileListsRatherThanSearches: Stripe's search has not indexed the
// intent a lost call made (it lags writes), but its list shows it: the
// call is settled at what it moved, never released.
func TestReconcileListsRatherThanSearches(t *testing.T) {
	f := newFixture(t)
	lost := f.call("/v1/payment_intents", 9, t0, "", true)
	f.charge(lost, "", "900")
	f.now = t0.Add(3 * time.Minute) // past NotFoundAfter, within the search lag of an incident
	if res := f.run(); res.Settled != 1 || res.Released != 0 {
		t.Fatalf("run = %+v", res)
	}
	if c := f.get(lost); c.CostState != ledger.CostSettled || c.Cost != 9*money.PerDollar {
		t.Fatalf("lost call = %+v; want settled at $9", c)
	}
}

// TestReconcileNeverReleasesOnSilenceAboutAnUntaggedCall: a call that
// wrote no tag is never released because Stripe lists nothing tagged with
// it; past UnknownAfterMax it is handed to an operator, its money still
// counted.
func TestReconcileNeverReleasesOnSilenceAboutAnUntaggedCall(t *testing.T) {
	f := newFixture(t)
	f.rc.UnknownAfterMax = time.Hour
	var escalated []string
	f.rc.Escalate = func(_ context.Context, c ledger.Call, reason string, _ time.Time) {
		escalated = append(escalated, c.CallID)
	}
	untagged := f.untagged("/v1/payment_intents", 9, t0, "", true)
	tagged := f.call("/v1/payment_intents", 4, t0, "", true)
	f.now = t0.Add(30 * time.Minute)
	if res := f.run(); res.Released != 1 || res.Undecided != 1 {
		t.Fatalf("run = %+v; want the tagged call released on Stripe's list, the untagged one left", res)
	}
	if c := f.get(tagged); c.CostState != ledger.CostReleased {
		t.Fatalf("tagged call = %+v", c)
	}
	f.now = t0.Add(2 * time.Hour)
	for range 2 {
		if res := f.run(); res.Escalated != 1 || res.Released != 0 {
			t.Fatalf("run past UnknownAfterMax = %+v", res)
		}
	}
	if c := f.get(untagged); c.CostState != ledger.CostUnknown || len(escalated) != 2 || escalated[0] != untagged {
		t.Fatalf("untagged call = %+v, escalated %v; want it unknown and handed to an operator", c, escalated)
	}
	u, _ := f.store.GetKey(f.ctx, f.key.ID, f.now)
	if u.Reserved != 9*money.PerDollar {
		t.Fatalf("reserved %s; want the untagged call's $9 still counted", u.Reserved)
	}
}
