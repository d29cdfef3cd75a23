package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors/stripe"
)

// TestCapModelEvidence is the randomized model of the cap held on evidence
// (issue 17): seeded, bounded sequences of Stripe calls whose client hangs
// up at every stage (before the gate, before the vendor sees the call,
// after the vendor acted, or the vendor answering 500 after it acted),
// mixed with tag tampering (a client's own keybrake_ keys, a tag read from
// another call's intent, metadata=, maps with no room left, updates that
// unset or move a tag) and runs of the reconciler, on the gate's clock,
// between them. Stripe's search lags; its lists do not. After every
// sequence, and a last reconciler run: the money Stripe moved is within the
// cap and counted, every tampering was refused with a 400 in Stripe's
// format, and no call is left holding money (each was tagged, so a list
// decides it).
//
// KEYBRAKE_EVIDENCE_SEQUENCES sets how many sequences run on the embedded
// ledger (default KEYBRAKE_CAP_SEQUENCES, itself 10,000 by default; Postgres
// runs a tenth, with seeds of its own), KEYBRAKE_CAP_SEED and
// KEYBRAKE_CAP_PG_SEED the first seeds, as for TestCapModel.
func TestCapModelEvidence(t *testing.T) {
	onBothLedgers(t, envInt(t, "KEYBRAKE_EVIDENCE_SEQUENCES", envInt(t, "KEYBRAKE_CAP_SEQUENCES", 10_000)), runEvidenceModel)
}

// capModelSQLite is a fresh embedded ledger for a model test, under
// /dev/shm when there is one: the model tests the cap logic, not the disk,
// and fsyncs on tmpfs are free.
func capModelSQLite(t *testing.T) string {
	dir := t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "keybrake-capmodel-"); err == nil {
			dir = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	return "sqlite:" + filepath.Join(dir, "ledger.db")
}

// runEvidenceModel runs count sequences from seed (a fixed count: go test
// -timeout bounds the time); seedEnv names the variable that replays one.
func runEvidenceModel(t *testing.T, dsn string, seed uint64, count int, seedEnv string) {
	l := newEvidenceLocal(t, dsn)
	calls := 0
	for i := range count {
		s := seed + uint64(i)
		l.sim.Reset()
		seq := &evidenceSeq{capSeq: newCapSeq(t, l, l.sim, s), l: l}
		seq.run()
		calls += seq.calls
		if t.Failed() {
			t.Fatalf("sequence with seed %d failed; replay it with %s=%d KEYBRAKE_EVIDENCE_SEQUENCES=1 go test -run '^TestCapModelEvidence$' ./integration/\n%s",
				s, seedEnv, s, seq.trace())
		}
	}
	t.Logf("evidence model: %d sequences, %d calls, seeds %d..%d, every cap held; the reconciler settled %d lost calls and released %d, %d tamperings refused",
		count, calls, seed, seed+uint64(count)-1, l.settled, l.released, l.refused)
	fmt.Printf("evidence model (%s): %d sequences, %d calls, every cap held; %d lost calls settled, %d released, %d tamperings refused\n",
		filepath.Base(t.Name()), count, calls, l.settled, l.released, l.refused)
}

// Where a client hangs up, or the answer is lost.
const (
	stageAnswered     = iota // no hang-up
	stageBeforeGate          // the client left before the gate read the call
	stageBeforeVendor        // the client left before the call reached Stripe
	stageAfterVendor         // Stripe acted; the client left before its answer
	stageAnswerLost          // Stripe acted; the connection broke on the way back
	stageVendor500           // Stripe acted, then answered 500
	stages
)

var stageNames = [stages]string{"answered", "gone before the gate", "gone before Stripe", "gone after Stripe acted",
	"answer lost after Stripe acted", "500 after Stripe acted"}

type stageKey struct{}

// staged is what the transport to Stripe knows of its request's fate.
type staged struct {
	stage  int
	cancel context.CancelFunc // the client's
}

// lossyStripe is the in-process transport to the simulated Stripe that
// plays each request's stage.
type lossyStripe struct{ h http.Handler }

func (t lossyStripe) RoundTrip(r *http.Request) (*http.Response, error) {
	st, _ := r.Context().Value(stageKey{}).(*staged)
	if r.Body == nil {
		r.Body = http.NoBody
	}
	stage := stageAnswered
	if st != nil {
		stage = st.stage
	}
	if stage == stageBeforeVendor {
		st.cancel()
		return nil, context.Canceled
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	switch stage {
	case stageAfterVendor:
		st.cancel()
		return nil, context.Canceled
	case stageAnswerLost:
		return nil, errors.New("connection reset by peer")
	case stageVendor500:
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(http.StatusInternalServerError)
		_, _ = rec.WriteString(`{"error":{"type":"api_error","message":"An unknown error occurred"}}`)
		return rec.Result(), nil
	}
	return w.Result(), nil
}

// evidenceLocal is the Stripe gate in this process on a real ledger, with
// a reconciler on the gate's clock and the simulated Stripe on it too.
type evidenceLocal struct {
	store ledger.Store
	sim   *simvendor.Sim
	gate  http.Handler
	rc    *reconcile.Reconciler
	mu    sync.Mutex
	now   time.Time
	// settled and released count what the reconciler decided, over every
	// sequence; refused counts the tamperings refused.
	settled, released, refused int
}

func newEvidenceLocal(t *testing.T, dsn string) *evidenceLocal {
	t.Helper()
	store, err := ledger.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("opening ledger: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := ledger.NewKeyCache(store, 10_000, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l := &evidenceLocal{store: store, now: time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)}
	l.sim = simvendor.New(simvendor.Config{StripeSecretKey: simStripeSecret, Now: l.read})
	sv, err := stripe.New(stripe.Config{SecretKey: simStripeSecret, Upstream: "http://stripe.sim",
		Client: &http.Client{Transport: inproc{l.sim.Stripe()}}})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://stripe.sim")
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: lossyStripe{l.sim.Stripe()},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				w.WriteHeader(499) // as Caddy's reverse_proxy does when the client left
				return
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	g, err := gate.New(gate.Config{Vendor: sv, Store: store, Keys: keys, Now: l.clock})
	if err != nil {
		t.Fatal(err)
	}
	l.gate = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = g.ServeHTTP(w, r, func(w http.ResponseWriter, r *http.Request) error {
			proxy.ServeHTTP(w, r)
			return nil
		})
	})
	l.rc = &reconcile.Reconciler{Store: store, Finders: map[string]reconcile.Finder{"stripe": sv},
		Pace: time.Nanosecond, Now: l.read}
	return l
}

// clock advances a millisecond a call.
func (l *evidenceLocal) clock() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.now = l.now.Add(time.Millisecond)
	return l.now
}

func (l *evidenceLocal) read() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now
}

// reconcile lets time pass beyond reconcile_not_found_after and runs the
// reconciler.
func (l *evidenceLocal) reconcile(t testing.TB) reconcile.Result {
	l.mu.Lock()
	l.now = l.now.Add(reconcile.DefaultNotFoundAfter + time.Minute)
	l.mu.Unlock()
	res, err := l.rc.RunOnce(context.Background())
	if err != nil {
		t.Errorf("reconciler run: %v", err)
	}
	l.mu.Lock()
	l.settled += res.Settled
	l.released += res.Released
	l.mu.Unlock()
	return res
}

func (l *evidenceLocal) issue(t testing.TB, spec capSpec) capKey {
	t.Helper()
	k := capKey{id: "vk" + randAlnum(20), secret: "kb" + randAlnum(40), vendor: spec.vendor}
	now := l.clock()
	err := l.store.CreateKey(context.Background(), ledger.Key{ID: k.id, Hash: ledger.HashSecret(k.secret), Vendor: spec.vendor,
		TotalCap: spec.total, AllowedEndpoints: spec.endpoint, RunLabel: "evidence/" + k.id,
		CreatedAt: now, ExpiresAt: now.Add(240 * time.Hour)})
	if err != nil {
		t.Fatalf("creating key: %v", err)
	}
	return k
}

func (l *evidenceLocal) do(t testing.TB, k capKey, req capRequest) capResponse {
	return l.doStaged(k, req, stageAnswered)
}

func (l *evidenceLocal) doStaged(k capKey, req capRequest, stage int) capResponse {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = context.WithValue(ctx, stageKey{}, &staged{stage: stage, cancel: cancel})
	if stage == stageBeforeGate {
		cancel()
	}
	r := httptest.NewRequestWithContext(ctx, req.method, "http://keybrake.local"+req.path, strings.NewReader(req.body))
	for name, vals := range req.header {
		r.Header[name] = vals
	}
	authorize(k, r.Header)
	w := httptest.NewRecorder()
	l.gate.ServeHTTP(w, r)
	return capResponse{status: w.Code, header: w.Header(), body: w.Body.String()}
}

func (l *evidenceLocal) counted(t testing.TB, k capKey) money.Micros {
	t.Helper()
	u, err := l.store.GetKey(context.Background(), k.id, l.read())
	if err != nil {
		t.Fatalf("reading key: %v", err)
	}
	return u.Spent + u.Reserved
}

// evidenceSeq is one sequence of the evidence model.
type evidenceSeq struct {
	*capSeq
	l *evidenceLocal
}

func (s *evidenceSeq) run() {
	capUSD := s.randomCap()
	s.cap = capUSD
	s.vendor = "stripe"
	s.key = s.l.issue(s.t, capSpec{vendor: "stripe", total: &capUSD, endpoint: stripeAll})
	s.note("key stripe: total cap %s", capUSD)
	ops := []func(){s.charge, s.charge, s.charge, s.tamperedCreate, s.tamperedCreate, s.tamperExisting,
		s.replayLast, s.reconcileNow, s.burst}
	for range 3 + s.rng.IntN(10) {
		ops[s.rng.IntN(len(ops))]()
	}
	s.reconcileNow()
	wantWithinCap(s.t, s.l, s.sim, s.key, s.cap)
	// Every call wrote its tag, and a list decides each: none is left
	// holding money, and what the key spent covers what Stripe moved.
	u, err := s.l.store.GetKey(context.Background(), s.key.id, s.l.read())
	if err != nil {
		s.t.Fatal(err)
	}
	if u.Reserved != 0 {
		s.t.Errorf("after the reconciler: %s still reserved; every call was tagged and listable", u.Reserved)
	}
	if moved := money.Micros(s.sim.Moved(simvendor.VendorStripe)); u.Spent < moved || u.Spent > s.cap {
		s.t.Errorf("spent %s; Stripe moved %s on a %s cap", u.Spent, moved, s.cap)
	}
}

func (s *evidenceSeq) stage() int { return s.rng.IntN(stages) }

// do sends a call at a stage; only a call answered in full must not be a
// Keybrake 5xx.
func (s *evidenceSeq) doAt(req capRequest, stage int) capResponse {
	r := s.l.doStaged(s.key, req, stage)
	s.calls++
	s.note("[%s] %s %s %s → %s", stageNames[stage], req.method, req.path, text.Truncate(req.body, 100), text.Truncate(r.String(), 140))
	if stage == stageAnswered && r.status >= 500 {
		s.t.Errorf("%s %s: %s", req.method, req.path, r)
	}
	s.last = &req
	return r
}

func (s *evidenceSeq) chargeBody(extra ...string) string {
	kv := []string{"amount", itoa(s.cents()), "currency", "usd", "confirm", "true", "payment_method", "pm_card_visa"}
	return form(append(kv, extra...)...)
}

func (s *evidenceSeq) charge() {
	s.doAt(stripePost("/v1/payment_intents", s.chargeBody(), s.maybeIdem(nil)...), s.stage())
}

// anyTag is a keybrake_call_id for a client to forge: made up, or read
// from an intent another call of this key made (a free GET shows it).
func (s *evidenceSeq) anyTag() string {
	r := serve(s.sim.Stripe(), http.MethodGet, "/v1/payment_intents?limit=100", "", formHeader("Authorization", "Bearer "+simStripeSecret))
	var list struct {
		Data []struct {
			Metadata map[string]string `json:"metadata"`
		} `json:"data"`
	}
	_ = json.Unmarshal([]byte(r.body), &list)
	if len(list.Data) > 0 && s.rng.IntN(3) > 0 {
		if tag := list.Data[s.rng.IntN(len(list.Data))].Metadata["keybrake_call_id"]; tag != "" {
			return tag
		}
	}
	return []string{"mine", "kt" + randAlnum(22), ""}[s.rng.IntN(3)]
}

func (s *evidenceSeq) tamperedCreate() {
	var extra []string
	code := ""
	switch s.rng.IntN(6) {
	case 0:
		extra, code = []string{"metadata[keybrake_call_id]", s.anyTag()}, "keybrake_reserved_metadata"
	case 1:
		extra, code = []string{"metadata[keybrake_run]", "mine"}, "keybrake_reserved_metadata"
	case 2:
		extra, code = []string{"metadata", ""}, "keybrake_metadata_cleared"
	default:
		n := 46 + s.rng.IntN(6) // 46..51 of the client's own keys
		for i := range n {
			extra = append(extra, fmt.Sprintf("metadata[c%02d]", i), "v")
		}
		if n > 48 {
			code = "keybrake_metadata_full"
		}
	}
	path := []string{"/v1/payment_intents", "/v1/charges"}[s.rng.IntN(2)]
	body := s.chargeBody(extra...)
	if path == "/v1/charges" {
		body = form(append([]string{"amount", itoa(s.cents()), "currency", "usd", "source", "tok_visa"}, extra...)...)
	}
	stage := s.stage()
	r := s.doAt(stripePost(path, body, s.maybeIdem(nil)...), stage)
	if code != "" && stage != stageBeforeGate {
		s.wantRefused(r, code)
	}
}

// tamperExisting tries to unset, move or clear the tag of an intent the
// key made.
func (s *evidenceSeq) tamperExisting() {
	r := serve(s.sim.Stripe(), http.MethodGet, "/v1/payment_intents?limit=1", "", formHeader("Authorization", "Bearer "+simStripeSecret))
	pi := ""
	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	if json.Unmarshal([]byte(r.body), &list) == nil && len(list.Data) > 0 {
		pi = list.Data[0].ID
	}
	if pi == "" {
		pi = outsideIntent(s.t, s.sim, s.cents(), "")
	}
	body, code := form("metadata[keybrake_call_id]", s.anyTag()), "keybrake_reserved_metadata"
	if s.rng.IntN(2) == 0 {
		body, code = form("metadata", ""), "keybrake_metadata_cleared"
	}
	stage := s.stage()
	if res := s.doAt(stripePost("/v1/payment_intents/"+pi, body), stage); stage != stageBeforeGate {
		s.wantRefused(res, code)
	}
}

func (s *evidenceSeq) wantRefused(r capResponse, code string) {
	s.t.Helper()
	var env stripeEnvelope
	if r.status != http.StatusBadRequest || json.Unmarshal([]byte(r.body), &env) != nil || env.Error == nil ||
		env.Error.Code != code || env.Error.Type != "invalid_request_error" {
		s.t.Errorf("tampering answered %s; want a 400 %s in Stripe's format", r, code)
	}
	s.l.mu.Lock()
	s.l.refused++
	s.l.mu.Unlock()
}

// replayLast sends the last request again (its idempotency key too) at a
// stage of its own.
func (s *evidenceSeq) replayLast() {
	if s.last == nil {
		s.charge()
		return
	}
	s.doAt(*s.last, s.stage())
}

func (s *evidenceSeq) reconcileNow() {
	res := s.l.reconcile(s.t)
	s.note("reconciler: settled %d, released %d, undecided %d", res.Settled, res.Released, res.Undecided)
}

// burst sends a few charges at once, each with its own fate.
func (s *evidenceSeq) burst() {
	n := 2 + s.rng.IntN(4)
	reqs := make([]capRequest, n)
	stagesOf := make([]int, n)
	for i := range reqs {
		reqs[i] = stripePost("/v1/payment_intents", s.chargeBody(), s.maybeIdem(nil)...)
		stagesOf[i] = s.stage()
	}
	s.note("burst of %d charges", n)
	var wg sync.WaitGroup
	out := make([]capResponse, n)
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.l.doStaged(s.key, reqs[i], stagesOf[i])
		}()
	}
	wg.Wait()
	for i := range reqs {
		s.calls++
		s.note("  [%s] %s → %s", stageNames[stagesOf[i]], text.Truncate(reqs[i].body, 100), text.Truncate(out[i].String(), 140))
		if stagesOf[i] == stageAnswered && out[i].status >= 500 {
			s.t.Errorf("burst: %s", out[i])
		}
	}
}
