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
// It also proves the gate lets honest work through: every sequence opens
// with an honest call its cap admits, which must succeed and move money
// (capSeq.honest), and money must move in at least capMinMovedShare of the
// sequences. TestCapModelFailsWhenBroken shows the model failing when the
// gate refuses everything, or prices SMS per code point.
//
// KEYBRAKE_CAP_SEQUENCES sets how many sequences run on the embedded
// ledger (default 10,000; Postgres runs a tenth as many, with seeds of its
// own), KEYBRAKE_CAP_SEED the first seed (default: the clock) and
// KEYBRAKE_CAP_PG_SEED Postgres' first seed (default: the one after the
// embedded ledger's last). A failing sequence prints how to replay it
// alone. The count is fixed; `go test -timeout` bounds the time.
func TestCapModel(t *testing.T) {
	onBothLedgers(t, envInt(t, "KEYBRAKE_CAP_SEQUENCES", 10_000), runCapModel)
}

// onBothLedgers runs a model's count sequences on a fresh embedded ledger
// from KEYBRAKE_CAP_SEED (default: the clock), then a tenth as many on a
// fresh Postgres database from seeds of its own, KEYBRAKE_CAP_PG_SEED
// (default: the one after the embedded ledger's last). run gets the name
// of the variable that replays a sequence. The count is fixed; `go test
// -timeout` bounds the time.
func onBothLedgers(t *testing.T, count int, run func(t *testing.T, dsn string, seed uint64, count int, seedEnv string)) {
	seed := envSeed(t, "KEYBRAKE_CAP_SEED", uint64(time.Now().UnixNano()))
	pgSeed := envSeed(t, "KEYBRAKE_CAP_PG_SEED", seed+uint64(count))
	t.Run("sqlite", func(t *testing.T) {
		run(t, capModelSQLite(t), seed, count, "KEYBRAKE_CAP_SEED")
	})
	t.Run("postgres", func(t *testing.T) {
		need(t, true)
		run(t, freshDatabase(t), pgSeed, max(count/10, 1), "KEYBRAKE_CAP_PG_SEED")
	})
}

// envSeed reads a seed from the environment.
func envSeed(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
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

// capMinMovedShare is the share of sequences in which money must move: a
// gate that refuses honest work fails the model. Every sequence opens with
// an honest call when its cap admits one, so the share measured is far
// above this (the log says it).
const capMinMovedShare = 0.6

// runCapModel runs count sequences from seed; seedEnv names the variable
// that replays one.
func runCapModel(t *testing.T, dsn string, seed uint64, count int, seedEnv string) {
	sim := newSim()
	local := newCapLocal(t, dsn, sim, capBroken(t, simVendors(t)))
	calls, moved, honest := 0, 0, 0
	for i := range count {
		s := seed + uint64(i)
		sim.Reset()
		seq := newCapSeq(t, local, sim, s)
		seq.run()
		calls += seq.calls
		if seq.moved > 0 {
			moved++
		}
		if seq.honestSent {
			honest++
		}
		if t.Failed() {
			t.Fatalf("sequence with seed %d failed; replay it with %s=%d KEYBRAKE_CAP_SEQUENCES=1 go test -run '^%s$' ./integration/\n%s",
				s, seedEnv, s, t.Name(), seq.trace())
		}
	}
	share := float64(moved) / float64(count)
	t.Logf("cap model: %d sequences, %d calls, seeds %d..%d, every cap held; %d honest openers went through, money moved in %d (%.0f%%)",
		count, calls, seed, seed+uint64(count)-1, honest, moved, 100*share)
	fmt.Printf("cap model (%s): %d sequences, %d calls, every cap held; money moved in %.0f%% of them\n",
		filepath.Base(t.Name()), count, calls, 100*share)
	if count >= 100 && share < capMinMovedShare {
		t.Errorf("money moved in %.0f%% of the sequences; an honest gate moves it in at least %.0f%%", 100*share, 100*capMinMovedShare)
	}
}

// simVendors are Keybrake's vendors configured like the simulator.
func simVendors(t testing.TB) func(map[string]*http.Client) map[string]vendors.Vendor {
	return func(c map[string]*http.Client) map[string]vendors.Vendor {
		sv, err := stripe.New(stripe.Config{SecretKey: simStripeSecret, Upstream: "http://stripe.sim", Client: c["stripe"],
			Rates: money.Rates{"gbp": simGBP, "jpy": 6_700, "kwd": simKWD}})
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
	// moved is what the vendor moved for the key, once the sequence ran;
	// honestSent, whether its honest opener was sent.
	moved      money.Micros
	honestSent bool
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
	s.honest()
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
	s.moved = money.Micros(s.sim.Moved(s.vendor))
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
