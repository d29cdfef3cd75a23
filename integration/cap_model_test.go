package integration

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
	"github.com/keybrake/keybrake/vendors/stripe"
)

// TestCapModel is the randomized model test of the cap: seeded, bounded
// sequences of calls, honest ones mixed with hostile ones (replays with
// altered bodies or accounts, a GET carrying an idempotency key, currency
// switches, captures above the authorisation, intents made elsewhere,
// money-moving endpoints, concurrent bursts, …), sent through the gate to
// the simulated vendors on both ledgers. After every sequence, for its key:
// the money the vendor moved is within the cap, and the ledger counted at
// least that much.
//
// KEYBRAKE_CAP_SEQUENCES sets how many sequences run on the embedded
// ledger (default 10,000; Postgres runs a tenth of them), and
// KEYBRAKE_CAP_SEED the first seed (default: the clock). A failing sequence
// prints its seed; KEYBRAKE_CAP_SEED=<seed> KEYBRAKE_CAP_SEQUENCES=1
// replays it alone. Each ledger stops after its time bound whatever the
// count, and says how many it ran.
func TestCapModel(t *testing.T) {
	count := envInt(t, "KEYBRAKE_CAP_SEQUENCES", 10_000)
	seed := capModelSeed(t)
	t.Run("sqlite", func(t *testing.T) {
		runCapModel(t, capModelSQLite(t), seed, count, 4*time.Minute)
	})
	t.Run("postgres", func(t *testing.T) {
		need(t, true)
		runCapModel(t, freshDatabase(t), seed, max(count/10, 1), 3*time.Minute)
	})
}

// capModelSeed is KEYBRAKE_CAP_SEED, or the clock.
func capModelSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("KEYBRAKE_CAP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KEYBRAKE_CAP_SEED: %v", err)
		}
		seed = v
	}
	return seed
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

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s: want a positive count, got %q", name, s)
	}
	return v
}

func runCapModel(t *testing.T, dsn string, seed uint64, count int, bound time.Duration) {
	sim := newSim()
	local := newCapLocal(t, dsn, sim, simVendors(t))
	ran, calls := runSequences(t, seed, count, bound, "KEYBRAKE_CAP_SEQUENCES", func(s uint64) (int, func() string) {
		sim.Reset()
		seq := newCapSeq(t, local, sim, s)
		seq.run()
		return seq.calls, seq.trace
	})
	t.Logf("cap model: %d sequences, %d calls, seeds %d..%d, every cap held", ran, calls, seed, seed+uint64(ran)-1)
	fmt.Printf("cap model (%s): %d sequences, %d calls, every cap held\n", filepath.Base(t.Name()), ran, calls)
	if ran < count {
		t.Errorf("only %d of %d sequences ran within %s", ran, count, bound)
	}
}

// runSequences runs one sequence per seed from seed on, count of them or
// as many as bound allows, and stops at the first that fails, saying how
// to replay it (countVar=1). It returns how many ran and their calls.
func runSequences(t *testing.T, seed uint64, count int, bound time.Duration, countVar string,
	run func(seed uint64) (calls int, trace func() string)) (ran, calls int) {
	deadline := time.Now().Add(bound)
	for i := range count {
		if time.Now().After(deadline) {
			break
		}
		s := seed + uint64(i)
		n, trace := run(s)
		calls += n
		ran++
		if t.Failed() {
			t.Fatalf("sequence with seed %d failed; replay it with KEYBRAKE_CAP_SEED=%d %s=1\n%s", s, s, countVar, trace())
		}
	}
	return ran, calls
}

// simVendors are Keybrake's vendors configured like the simulator.
func simVendors(t testing.TB) func(map[string]*http.Client) map[string]vendors.Vendor {
	return func(c map[string]*http.Client) map[string]vendors.Vendor {
		sv, err := stripe.New(stripe.Config{SecretKey: simStripeSecret, Upstream: "http://stripe.sim", Client: c["stripe"],
			Rates: money.Rates{"gbp": simGBP, "jpy": 6_700}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]vendors.Vendor{"stripe": sv}
		for name, v := range simOtherVendors(t) {
			out[name] = v
		}
		return out
	}
}

// capSeq is one sequence: a key, and calls made with it.
type capSeq struct {
	t      *testing.T
	c      capTarget
	sim    *simvendor.Sim
	rng    *rand.Rand
	key    capKey
	cap    money.Micros
	vendor string
	calls  int

	mu  sync.Mutex
	log []string
	// Stripe objects this sequence made, and its last request, for replays.
	intents, charges []string
	last             *capRequest
}

func newCapSeq(t *testing.T, c capTarget, sim *simvendor.Sim, seed uint64) *capSeq {
	return &capSeq{t: t, c: c, sim: sim, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *capSeq) run() {
	vendorsInPlay := append([]string{"stripe"}, otherVendorNames()...)
	s.vendor = vendorsInPlay[s.rng.IntN(len(vendorsInPlay))]
	spec := capSpec{vendor: s.vendor, endpoint: allEndpoints(s.vendor)}
	capUSD := s.randomCap()
	switch s.rng.IntN(3) {
	case 0:
		spec.total = &capUSD
	case 1:
		spec.daily = &capUSD
	default:
		spec.daily = &capUSD
		total := capUSD + money.Micros(s.rng.Int64N(int64(capUSD)+1))
		spec.total = &total
	}
	s.cap = capUSD
	s.key = s.c.issue(s.t, spec)
	s.note("key %s: %s cap %s", s.vendor, capKind(spec), capUSD)
	ops := opsFor(s.vendor)
	for range 2 + s.rng.IntN(9) {
		op := ops[s.rng.IntN(len(ops))]
		if s.rng.IntN(6) == 0 {
			s.burst(op, 2+s.rng.IntN(7))
			continue
		}
		op.run(s)
	}
	wantWithinCap(s.t, s.c, s.sim, s.key, s.cap)
}

func capKind(spec capSpec) string {
	switch {
	case spec.total != nil && spec.daily != nil:
		return "daily (and a larger total)"
	case spec.daily != nil:
		return "daily"
	}
	return "total"
}

// randomCap is between a cent and $2,000, most often small.
func (s *capSeq) randomCap() money.Micros {
	switch s.rng.IntN(4) {
	case 0:
		return money.Micros(10_000 + s.rng.Int64N(990_000)) // $0.01–$1
	case 1:
		return money.Micros(1_000_000 + s.rng.Int64N(49_000_000)) // $1–$50
	default:
		return money.Micros(50_000_000 + s.rng.Int64N(1_950_000_000)) // $50–$2,000
	}
}

// cents is an amount around the cap: from a cent to one and a half caps.
func (s *capSeq) cents() int64 {
	maxCents := max(int64(s.cap)*3/2/10_000, 2)
	return 1 + s.rng.Int64N(maxCents)
}

// burst runs op n times at once: the gate must hold the cap under
// concurrency (each run gets its own view of remembered objects).
func (s *capSeq) burst(op capOp, n int) {
	s.note("burst of %d × %s", n, op.name)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		child := &capSeq{t: s.t, c: s.c, sim: s.sim, key: s.key, cap: s.cap, vendor: s.vendor,
			rng: rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64())), intents: s.intents, charges: s.charges, last: s.last}
		go func() {
			defer wg.Done()
			op.run(child)
			s.mu.Lock()
			s.calls += child.calls
			s.log = append(s.log, child.log...)
			s.mu.Unlock()
		}()
	}
	wg.Wait()
}

// do sends one call, remembers it, and fails the test on an answer that
// is no refusal and no vendor answer (a panic, a 5xx from Keybrake).
func (s *capSeq) do(req capRequest) capResponse {
	r := s.c.do(s.t, s.key, req)
	s.calls++
	s.note("%s %s %s → %s", req.method, req.path, text.Truncate(req.body, 120), text.Truncate(r.String(), 160))
	if r.status >= 500 {
		s.t.Errorf("%s %s: %s", req.method, req.path, r)
	}
	s.last = &req
	return r
}

func (s *capSeq) note(format string, args ...any) {
	s.mu.Lock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *capSeq) trace() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ""
	for _, l := range s.log {
		out += "  " + l + "\n"
	}
	return out
}

// capOp is one kind of call (or short run of calls) a sequence makes.
type capOp struct {
	name string
	run  func(s *capSeq)
}

func opsFor(vendor string) []capOp {
	switch vendor {
	case "stripe":
		return stripeOps
	}
	return otherVendorOps(vendor)
}

func allEndpoints(vendor string) []string {
	switch vendor {
	case "stripe":
		return stripeAll
	}
	return otherVendorEndpoints(vendor)
}
