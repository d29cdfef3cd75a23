package integration

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors/declared"
)

// TestCapModelBatches is the randomized model of issue 17's families,
// through the gate in this process on both ledgers: Resend batches whose
// emails partly fail in permissive mode (settled email by email), and a
// declared OpenAI-compatible API (the docs/vendors.md example) whose answers
// may say more than was asked, with hostile requests that could be read two
// ways mixed in. After every sequence, for its key: what the vendor moved
// or billed (when it honoured the bound) is within the cap and counted by
// the ledger, and the ledger never counts past the cap, whatever the
// answers said.
//
// KEYBRAKE_CAP_SEQUENCES / 10 sequences run on the embedded ledger
// (default 1,000), a tenth of that on Postgres with seeds of its own;
// KEYBRAKE_CAP_SEED and KEYBRAKE_CAP_PG_SEED are the first seeds, as for
// TestCapModel. The count is fixed; `go test -timeout` bounds the time.
func TestCapModelBatches(t *testing.T) {
	onBothLedgers(t, max(envInt(t, "KEYBRAKE_CAP_SEQUENCES", 10_000)/10, 1), runBatchModel)
}

// batchModel is the gates and vendors the sequences run against.
type batchModel struct {
	local *capLocal
	sim   *simvendor.Sim
	llm   *fakeLLM
}

func runBatchModel(t *testing.T, dsn string, seed uint64, count int, seedEnv string) {
	m := batchModel{sim: newSim(), llm: &fakeLLM{honour: true}}
	m.local = newCapLocal(t, dsn, m.sim, simVendors(t))
	v, err := declared.New(declared.OpenAIChatExample(openaiRealKey))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gate.New(gate.Config{Vendor: v, Store: m.local.store, Keys: m.local.keys, Now: m.local.clock})
	if err != nil {
		t.Fatal(err)
	}
	m.local.gates["openai"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = g.ServeHTTP(w, r, func(w http.ResponseWriter, r *http.Request) error {
			m.llm.serve(w, r) // the LLM answers in this process
			return nil
		})
	})
	ran, calls := 0, 0
	for ; ran < count; ran++ {
		s := seed + uint64(ran)
		m.sim.Reset()
		m.llm.reset(true)
		seq := &batchSeq{t: t, m: m, rng: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))}
		if seq.rng.IntN(2) == 0 {
			seq.resendBatches()
		} else {
			seq.llmCalls()
		}
		calls += seq.calls
		if t.Failed() {
			t.Fatalf("sequence with seed %d failed; replay it with %s=%d KEYBRAKE_CAP_SEQUENCES=10\n%s", s, seedEnv, s, strings.Join(seq.log, "\n"))
		}
	}
	t.Logf("batch model: %d sequences, %d calls, seeds %d..%d, every cap held", ran, calls, seed, seed+uint64(ran)-1)
	fmt.Printf("batch model (%s): %d sequences, %d calls, every cap held\n", filepath.Base(t.Name()), ran, calls)
}

// batchSeq is one sequence: a key and its calls.
type batchSeq struct {
	t     *testing.T
	m     batchModel
	rng   *rand.Rand
	calls int
	log   []string
}

func (s *batchSeq) do(k capKey, req capRequest) capResponse {
	s.calls++
	r := s.m.local.do(s.t, k, req)
	s.log = append(s.log, fmt.Sprintf("%s %s %s -> %s", req.method, req.path, text.Truncate(req.body, 160), text.Truncate(r.String(), 160)))
	return r
}

// resendBatches sends batches of emails, some invalid, in permissive or
// strict mode; the simulated Resend moves money for the emails it sends,
// each at its recipients. Every call settles, so the ledger counts exactly
// what moved.
func (s *batchSeq) resendBatches() {
	cap := money.Micros(1_000 + s.rng.Int64N(200_000))
	k := s.m.local.issue(s.t, capSpec{vendor: "resend", total: &cap, endpoint: resendAll})
	for range 3 + s.rng.IntN(10) {
		emails := make([]string, 1+s.rng.IntN(8))
		for i := range emails {
			emails[i] = s.email()
		}
		body := "[" + strings.Join(emails, ",") + "]"
		hdr := jsonHeader()
		if s.rng.IntN(10) < 7 {
			hdr.Set("x-batch-validation", "permissive")
		}
		path := "/emails/batch"
		switch s.rng.IntN(20) {
		case 0: // a recipient in the query string too
			path += "?to=x@example.com"
		case 1: // a key given twice
			body = strings.Replace(body, `"subject"`, `"to":"dup@example.com","subject"`, 1)
		}
		r := s.do(k, capRequest{vendor: "resend", method: "POST", path: path, header: hdr, body: body})
		if path != "/emails/batch" && r.status != 400 {
			s.t.Errorf("a recipient in the query: %s", r)
		}
	}
	moved, counted := money.Micros(s.m.sim.Moved("resend")), s.m.local.counted(s.t, k)
	if moved > cap || counted != moved {
		s.t.Errorf("resend moved %s, counted %s, cap %s", moved, counted, cap)
	}
}

// email is one email of a batch: 0 to 10 recipients in to, cc and bcc (as
// arrays or comma-separated strings), invalid (no subject) one time in
// three.
func (s *batchSeq) email() string {
	var fields []string
	for _, f := range []string{"to", "cc", "bcc"} {
		n := s.rng.IntN(5)
		if f != "to" {
			n = s.rng.IntN(4)
		}
		if n == 0 {
			continue
		}
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("%s%d@example.com", f, s.rng.IntN(1000))
		}
		if s.rng.IntN(2) == 0 {
			fields = append(fields, fmt.Sprintf(`"%s":"%s"`, f, strings.Join(addrs, ", ")))
		} else {
			fields = append(fields, fmt.Sprintf(`"%s":["%s"]`, f, strings.Join(addrs, `","`)))
		}
	}
	fields = append(fields, `"from":"a@example.com"`, `"html":"x"`)
	if s.rng.IntN(3) != 0 {
		fields = append(fields, `"subject":"s"`)
	}
	return "{" + strings.Join(fields, ",") + "}"
}

// llmCalls sends chat completions with and without max_tokens to an API
// that honours the bound or answers more than asked, and requests that
// could be read two ways.
func (s *batchSeq) llmCalls() {
	cap := money.Micros(200 + s.rng.Int64N(20_000))
	k := s.m.local.issue(s.t, capSpec{vendor: "openai", total: &cap, endpoint: openaiAll})
	honest := true
	for range 2 + s.rng.IntN(8) {
		honour := s.rng.IntN(5) != 0
		honest = honest && honour
		s.m.llm.behave(honour, 1+s.rng.Int64N(40_000))
		fields := []string{`"model":"gpt-4o-mini"`,
			fmt.Sprintf(`"messages":[{"role":"user","content":%q}]`, strings.Repeat([]string{"a", "ж", "😀 "}[s.rng.IntN(3)], s.rng.IntN(300)))}
		switch s.rng.IntN(3) {
		case 0:
			fields = append(fields, fmt.Sprintf(`"max_tokens":%d`, 1+s.rng.IntN(50_000)))
		case 1:
			fields = append(fields, fmt.Sprintf(`"max_completion_tokens":%d`, 1+s.rng.IntN(50_000)))
		}
		if s.rng.IntN(3) == 0 {
			fields = append(fields, fmt.Sprintf(`"n":%d`, 1+s.rng.IntN(3)))
		}
		body, path, ct := "{"+strings.Join(fields, ",")+"}", "/v1/chat/completions", "application/json"
		hostile := true
		switch s.rng.IntN(12) {
		case 0:
			path += "?max_tokens=1"
		case 1:
			body = strings.Replace(body, "{", `{"max_tokens":1,"max_tokens":99999,`, 1)
		case 2:
			ct = "application/x-www-form-urlencoded"
		case 3:
			body = strings.Replace(body, "{", `{"max_tokens":1,"max_completion_tokens":99999,`, 1)
		default:
			hostile = false
		}
		before := len(s.m.llm.received())
		r := s.do(k, capRequest{vendor: "openai", method: "POST", path: path, header: http.Header{"Content-Type": {ct}}, body: body})
		switch {
		case hostile && (r.status != 400 || len(s.m.llm.received()) != before):
			s.t.Errorf("a request read two ways: %s", r)
		case !hostile && r.status != 200 && r.status != 429:
			s.t.Errorf("chat: %s", r)
		}
	}
	billed, counted := s.m.llm.billed(), s.m.local.counted(s.t, k)
	if counted > cap || (honest && (billed > cap || counted < billed)) {
		s.t.Errorf("the LLM billed %s (honouring the bound: %v), counted %s, cap %s", billed, honest, counted, cap)
	}
}
