package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
)

// TestCapModelRules is the randomized model of a key's rules: seeded,
// bounded sequences of money-moving calls (Stripe charges naming customers
// and currencies, Twilio messages to numbers of several countries) with
// random rules (max_call_usd, max_calls, rate, allow, once_per), sent
// sequentially and in concurrent bursts, with the clock jumping across
// rate windows, through the gate to the simulated vendors on the embedded
// ledger (and a tenth of them on Postgres). After every sequence, from
// what the simulated vendor received and the ledger recorded: nothing was
// forwarded against a rule, ever.
//
// KEYBRAKE_CAP_SEQUENCES and KEYBRAKE_CAP_SEED as for TestCapModel (this
// test runs a fifth of the sequences).
func TestCapModelRules(t *testing.T) {
	onBothLedgers(t, max(envInt(t, "KEYBRAKE_CAP_SEQUENCES", 10_000)/5, 1), runRulesModel)
}

// runRulesModel runs count sequences from seed (a fixed count: go test
// -timeout bounds the time); seedEnv names the variable that replays one.
func runRulesModel(t *testing.T, dsn string, seed uint64, count int, seedEnv string) {
	sim := newSim()
	local := newCapLocal(t, dsn, sim, simVendors(t))
	ran, calls, refused, forwarded := 0, 0, map[string]int{}, 0
	for i := range count {
		s := seed + uint64(i)
		sim.Reset()
		seq := &rulesSeq{t: t, l: local, sim: sim, rng: rand.New(rand.NewPCG(s, s^0x5851f42d4c957f2d)), refused: map[string]int{}, accepted: map[string]int{}}
		seq.run()
		calls += seq.calls
		forwarded += seq.received
		for rule, n := range seq.refused {
			refused[rule] += n
		}
		ran++
		if t.Failed() {
			t.Fatalf("sequence with seed %d failed; replay it with %s=%d KEYBRAKE_CAP_SEQUENCES=5\n%s", s, seedEnv, s, strings.Join(seq.log, "\n"))
		}
	}
	t.Logf("rules model: %d sequences, %d calls (%d forwarded, refused by rule %v), seeds %d..%d, no rule ever broken",
		ran, calls, forwarded, refused, seed, seed+uint64(ran)-1)
	fmt.Printf("rules model (%s): %d sequences, %d calls, %d forwarded, no rule ever broken\n", filepath.Base(t.Name()), ran, calls, forwarded)
	if ran >= 50 && (forwarded == 0 || len(refused) < len(rules.Names)) {
		t.Errorf("the model did not exercise every rule: %d forwarded, refusals %v", forwarded, refused)
	}
}

// The subjects' pools: a few values each, so that rules and duplicates
// meet often.
var (
	rulesCustomers  = []string{"cus_A", "cus_B", "cus_C", "cus_D"}
	rulesCurrencies = []string{"usd", "gbp"}
	// rulesNumbers maps a destination to its country as a rule reads it
	// ("" for none).
	rulesNumbers = map[string]string{
		"+15005550006": "US", "+15005550007": "US", "+16135550123": "CA",
		"+17875550123": "PR", "+447700900123": "GB", "+882123456789": "",
	}
)

// rulesSeq is one sequence: a key with rules, and calls made with it.
type rulesSeq struct {
	t      *testing.T
	l      *capLocal
	sim    *simvendor.Sim
	rng    *rand.Rand
	key    capKey
	rules  *rules.Rules
	vendor string
	calls  int
	// refused counts the calls each rule refused; received, the calls
	// the vendor received.
	refused  map[string]int
	received int
	// accepted counts, per once_per value, the calls the vendor accepted
	// (2xx): a call it refused gives its value back.
	accepted map[string]int

	mu  sync.Mutex
	log []string
}

func (s *rulesSeq) note(format string, args ...any) {
	s.mu.Lock()
	s.log = append(s.log, "  "+fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

func (s *rulesSeq) pick(pool []string) []string {
	var out []string
	for _, v := range pool {
		if s.rng.IntN(2) == 0 {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		out = append(out, pool[s.rng.IntN(len(pool))])
	}
	return out
}

// randomRules draws each rule with some chance; subjects from the vendor's.
func (s *rulesSeq) randomRules() *rules.Rules {
	w := map[string]any{}
	if s.rng.IntN(3) == 0 {
		w["max_call_usd"] = []string{"0.01", "5", "20"}[s.rng.IntN(3)]
	}
	if s.rng.IntN(3) == 0 {
		w["max_calls"] = 1 + s.rng.IntN(6)
	}
	if s.rng.IntN(3) == 0 {
		w["rate"] = fmt.Sprintf("%d/%ds", 1+s.rng.IntN(4), []int{1, 10, 60}[s.rng.IntN(3)])
	}
	allow := map[string][]string{}
	once := ""
	if s.vendor == "stripe" {
		if s.rng.IntN(2) == 0 {
			allow["customer"] = s.pick(rulesCustomers)
		}
		if s.rng.IntN(4) == 0 {
			allow["currency"] = s.pick(rulesCurrencies)
		}
		if s.rng.IntN(2) == 0 {
			once = "customer"
		}
	} else {
		if s.rng.IntN(2) == 0 {
			allow["to_country"] = s.pick([]string{"US", "CA", "PR", "GB"})
		}
		if s.rng.IntN(4) == 0 {
			allow["to"] = s.pick([]string{"+1500555*", "+1613*", "+44*"})
		}
		if s.rng.IntN(3) == 0 {
			once = "to"
		}
	}
	if len(allow) > 0 {
		w["allow"] = allow
	}
	if once != "" {
		w["once_per"] = once
	}
	b, _ := json.Marshal(w)
	r, err := rules.Parse("rules", b)
	if err != nil {
		s.t.Fatalf("drawing rules %s: %v", b, err)
	}
	return r
}

func (s *rulesSeq) run() {
	s.vendor = []string{"stripe", "twilio"}[s.rng.IntN(2)]
	s.rules = s.randomRules()
	capUSD := money.Micros(1_000) * money.PerDollar
	s.key = capKey{id: "vk" + randAlnum(20), secret: "kb" + randAlnum(40), vendor: s.vendor}
	now := s.l.clock()
	endpoints := stripeAll
	if s.vendor == "twilio" {
		endpoints = twilioAll
	}
	if err := s.l.store.CreateKey(context.Background(), ledger.Key{ID: s.key.id, Hash: ledger.HashSecret(s.key.secret),
		Vendor: s.vendor, TotalCap: &capUSD, AllowedEndpoints: endpoints, RunLabel: "rules/" + s.key.id,
		CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour), Rules: s.rules}); err != nil {
		s.t.Fatalf("creating key: %v", err)
	}
	b, _ := json.Marshal(s.rules)
	s.note("key %s with rules %s", s.vendor, b)
	for range 3 + s.rng.IntN(12) {
		switch s.rng.IntN(6) {
		case 0:
			// A burst: several at once.
			var wg sync.WaitGroup
			for range 2 + s.rng.IntN(8) {
				req := s.request()
				wg.Add(1)
				go func() { defer wg.Done(); s.do(req) }()
			}
			wg.Wait()
		case 1:
			// Time passes: across a rate window, or not.
			d := time.Duration(s.rng.IntN(70_000)) * time.Millisecond
			s.l.mu.Lock()
			s.l.now = s.l.now.Add(d)
			s.l.mu.Unlock()
			s.note("%s pass", d)
		default:
			s.do(s.request())
		}
	}
	s.check()
}

// request draws one money-moving call.
func (s *rulesSeq) request() capRequest {
	if s.vendor == "stripe" {
		kv := []string{"amount", itoa(100 + s.rng.Int64N(2000)), "currency", rulesCurrencies[s.rng.IntN(2)],
			"confirm", "true", "payment_method", "pm_card_visa"}
		if s.rng.IntN(8) > 0 {
			kv = append(kv, "customer", rulesCustomers[s.rng.IntN(len(rulesCustomers))])
		}
		return stripePost("/v1/payment_intents", form(kv...))
	}
	numbers := slices.Sorted(func(yield func(string) bool) {
		for n := range rulesNumbers {
			if !yield(n) {
				return
			}
		}
	})
	return twilioPost("Messages.json", form("To", numbers[s.rng.IntN(len(numbers))], "From", "+15005550001", "Body", "hi"))
}

func (s *rulesSeq) do(req capRequest) {
	r := s.l.do(s.t, s.key, req)
	s.mu.Lock()
	s.calls++
	if rule := r.header.Get("X-Keybrake-Rule"); rule != "" {
		s.refused[rule]++
	}
	if s.rules.OncePer != "" && r.status/100 == 2 {
		for _, v := range s.subjectsOf([]byte(req.body))[s.rules.OncePer] {
			s.accepted[v]++
		}
	}
	s.mu.Unlock()
	s.note("%s %s → %d %s %s", req.method, req.path, r.status, r.header.Get("X-Keybrake-Rule"), req.body)
	if r.status >= 500 {
		s.t.Errorf("%s %s: %s", req.method, req.path, r)
	}
}

// subjectsOf reads what a request the vendor received names, as the
// vendor reads it: independently of Keybrake's own reading.
func (s *rulesSeq) subjectsOf(body []byte) map[string][]string {
	f, _ := url.ParseQuery(string(body))
	out := map[string][]string{}
	if s.vendor == "stripe" {
		if c := f.Get("customer"); c != "" {
			out["customer"] = []string{c}
		}
		out["currency"] = []string{f.Get("currency")}
		return out
	}
	to := f.Get("To")
	out["to"] = []string{to}
	if c := rulesNumbers[to]; c != "" {
		out["to_country"] = []string{c}
	}
	return out
}

// check: every money-moving request the vendor received names only
// allowed subjects and each once_per value once; the ledger's forwarded
// calls are no more than max_calls, no more than rate in any window, none
// above max_call_usd.
func (s *rulesSeq) check() {
	t, r := s.t, s.rules
	received := 0
	for _, rq := range s.sim.Received() {
		if rq.Vendor != s.vendor || rq.Method != "POST" {
			continue
		}
		received++
		subj := s.subjectsOf(rq.Body)
		for name, allowed := range r.Allow {
			vals := subj[name]
			if len(vals) == 0 {
				t.Errorf("forwarded a call without %s against allow.%s: %s", name, name, rq.Body)
			}
			for _, v := range vals {
				if !rules.Matches(allowed, v) {
					t.Errorf("forwarded %s %s against allow.%s %v", name, v, name, allowed)
				}
			}
		}
	}
	s.received = received
	calls := s.forwarded(s.key)
	if len(calls) != received {
		t.Errorf("the ledger forwarded %d calls, the vendor received %d", len(calls), received)
	}
	for v, n := range s.accepted {
		if n > 1 {
			t.Errorf("%s %s was charged or messaged %d times against once_per", r.OncePer, v, n)
		}
	}
	if r.MaxCalls != nil && int64(len(calls)) > *r.MaxCalls {
		t.Errorf("%d calls forwarded against max_calls %d", len(calls), *r.MaxCalls)
	}
	for i, c := range calls {
		if r.MaxCallUSD != nil && c.Reserved > *r.MaxCallUSD {
			t.Errorf("call %s reserved %s against max_call_usd %s", c.CallID, c.Reserved, r.MaxCallUSD)
		}
		if r.Rate != nil {
			in := 0
			for _, d := range calls[:i+1] {
				if d.StartedAt.After(c.StartedAt.Add(-r.Rate.Window)) {
					in++
				}
			}
			if int64(in) > r.Rate.Calls {
				t.Errorf("%d calls forwarded in the %s up to %s against rate %s", in, r.Rate.Window, c.StartedAt, r.Rate)
			}
		}
	}
}

// forwarded are the calls of k the ledger let through with a reservation,
// in the order they started.
func (s *rulesSeq) forwarded(k capKey) []ledger.Call {
	var out []ledger.Call
	f := ledger.AuditFilter{KeyID: k.id, Limit: 1000}
	for {
		calls, next, err := s.l.store.Audit(context.Background(), f)
		if err != nil {
			s.t.Fatalf("audit: %v", err)
		}
		for _, c := range calls {
			if c.CostState != ledger.CostNone && c.ReplayOf == "" {
				out = append(out, c)
			}
		}
		if next == "" {
			return out
		}
		f.Cursor = next
	}
}
