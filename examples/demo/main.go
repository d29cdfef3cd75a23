// Command demo tells Keybrake's fan-out story end to end, against a running
// Keybrake (scripts/demo.sh starts one in front of stripe-mock):
//
//  1. A workflow run asks Keybrake for a vault key capped at $1,000.
//  2. An upstream pagination bug hands the for-each step 500 customer IDs
//     instead of 50, and 500 workers each create a $20 PaymentIntent at once
//     with the official stripe-go SDK (MaxNetworkRetries 2).
//  3. Exactly 50 go through; 450 are stopped with 429 keybrake_cap_hit,
//     which stripe-go does not retry.
//  4. The run's summary and audit trail show what happened; the key is
//     revoked and the next call is refused with 401 keybrake_key_revoked.
//
// It exits 0 only if every one of those numbers held.
//
//	go run ./examples/demo -keybrake http://127.0.0.1:8080 -token "$KEYBRAKE_API_TOKEN"
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v82"
)

const endpoint = "POST /v1/payment_intents"

func main() {
	os.Exit(run())
}

// config is what the flags set.
type config struct {
	base        string
	token       string
	customers   int
	intended    int
	amountCents int64
	capUSD      string
	timeout     time.Duration
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.base, "keybrake", envOr("KEYBRAKE_URL", "http://127.0.0.1:8080"), "Keybrake's base URL (env KEYBRAKE_URL)")
	flag.StringVar(&c.token, "token", os.Getenv("KEYBRAKE_API_TOKEN"), "bearer token of the key API (env KEYBRAKE_API_TOKEN)")
	flag.IntVar(&c.customers, "customers", 500, "customer IDs the buggy upstream step hands over")
	flag.IntVar(&c.intended, "intended", 50, "customer IDs the step should have handed over")
	flag.Int64Var(&c.amountCents, "amount", 2000, "amount of each PaymentIntent, in US cents")
	flag.StringVar(&c.capUSD, "cap", "1000", "the run key's total_usd_cap, in dollars")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Minute, "bound on the whole demo")
	flag.Parse()
	c.base = strings.TrimRight(c.base, "/")
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// failures collects every broken expectation; the demo goes on where it can
// so that one run shows everything that is wrong.
type failures struct {
	mu   sync.Mutex
	list []string
}

func (f *failures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	f.list = append(f.list, msg)
	fmt.Printf("    ✗ %s\n", msg)
}

func (f *failures) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.list)
}

func phase(format string, args ...any)  { fmt.Printf("\n▸ "+format+"\n", args...) }
func detail(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }
func fatal(format string, args ...any) int {
	fmt.Printf("\n✗ FAIL: "+format+"\n", args...)
	return 1
}

func run() int {
	cfg := parseFlags()
	if cfg.token == "" {
		return fatal("no API token: pass -token or set KEYBRAKE_API_TOKEN")
	}
	capMicros, err := parseMicros(jsonNumber(cfg.capUSD))
	if err != nil || capMicros <= 0 {
		return fatal("-cap %q is not a positive number of dollars", cfg.capUSD)
	}
	if cfg.amountCents <= 0 || cfg.customers <= 0 {
		return fatal("-amount and -customers must be positive")
	}
	amount := micros(cfg.amountCents) * 10_000
	wantCharges := int(min(int64(capMicros/amount), int64(cfg.customers)))
	wantCapHits := cfg.customers - wantCharges
	wantSpent := micros(wantCharges) * amount

	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	var fails failures
	started := time.Now()

	// One loopback HTTP client for everything: enough idle connections for
	// 500 concurrent workers, and every request bounded in time.
	transport := &http.Transport{
		Proxy:               nil, // loopback only: never through an HTTP proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        2 * cfg.customers,
		MaxIdleConnsPerHost: 2 * cfg.customers,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	counter := &countingTransport{next: transport}
	httpClient := &http.Client{Transport: counter, Timeout: 30 * time.Second}
	kb := &api{base: cfg.base, token: cfg.token, http: httpClient}

	// 1. The run issues its key.
	label := "windmill/demo-" + time.Now().UTC().Format("20060102-150405") + "-" + randomHex(3)
	key, err := kb.createKey(ctx, createKeyRequest{
		Vendor:           "stripe",
		TotalUSDCap:      jsonNumber(cfg.capUSD),
		AllowedEndpoints: []string{endpoint},
		ExpiresIn:        "15m",
		AgentRunLabel:    label,
		Metadata:         map[string]string{"flow": "f/billing/charge_customers", "step": "charge_each"},
	})
	if err != nil {
		return fatal("issuing the vault key: %v", err)
	}
	phase("Run %s issues a vault key: cap %s total, %s only, expires in 15m", label, capMicros.usd(), endpoint)
	detail("key_id %s, vault key %s… (shown once; the real sk_test_… secret stays inside Keybrake)", key.KeyID, prefix(key.VaultKey, 4))
	if key.KeyID == "" || key.VaultKey == "" {
		return fatal("POST /vault/keys answered 201 without key_id or vault_key: %+v", key)
	}
	if got, err := parseMicros(key.TotalUSDCap); err != nil || got != capMicros {
		fails.add("POST /vault/keys: total_usd_cap is %q, want %s", key.TotalUSDCap, capMicros.usd())
	}

	// 2. The bug and the fan-out.
	phase("Upstream bug: fetch_customers ignored its page size and handed the for-each step %d customer IDs instead of %d",
		cfg.customers, cfg.intended)
	customers := make([]string, cfg.customers)
	for i := range customers {
		customers[i] = fmt.Sprintf("cus_demo%04d", i+1)
	}

	// stripe-go is pointed at Keybrake's root, where Stripe's own /v1/*
	// paths go to Stripe. Not at the /stripe prefix: stripe-go v82 reads the
	// API version from the request's whole URL path (extractVersion in
	// stripe.go), so a base URL with a path fails every call with "unknown
	// path prefix /stripe/v1/…" after the response arrives, and then retries.
	sc := stripe.NewClient(key.VaultKey, stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL:               stripe.String(cfg.base),
		HTTPClient:        httpClient,
		MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})))

	phase("%d workers charging %s each through stripe-go (MaxNetworkRetries=2), all at once…",
		cfg.customers, amount.usd())
	counter.reset()
	fanStart := time.Now()
	results := fanOut(ctx, sc, label, customers, cfg.amountCents)
	res := classify(results, cfg.amountCents)
	res.took = time.Since(fanStart)
	sent := counter.get()

	detail("%d PaymentIntents created (%d × %s = %s)", len(res.charged), len(res.charged), amount.usd(),
		(micros(len(res.charged)) * amount).usd())
	detail("%d stopped by Keybrake: 429 keybrake_cap_hit, X-Keybrake-Cap-Hit: true, Stripe-Should-Retry: false",
		res.capHits)
	if res.sample != "" {
		detail("  stripe-go's error: %q", res.sample)
	}
	detail("%d HTTP requests for %d calls: stripe-go retried none of the cap hits (fan-out took %s)",
		sent, cfg.customers, res.took.Round(time.Millisecond))
	if len(res.charged) != wantCharges {
		fails.add("%d PaymentIntents created, want exactly %d", len(res.charged), wantCharges)
	}
	if res.capHits != wantCapHits {
		fails.add("%d cap hits, want exactly %d", res.capHits, wantCapHits)
	}
	if sent != int64(cfg.customers) {
		fails.add("%d HTTP requests sent for %d calls, want exactly %d (a retry went out)", sent, cfg.customers, cfg.customers)
	}
	for _, a := range res.anomalies {
		fails.add("%s", a)
	}

	// 3. What the ledger says. Settlement is written as the response streams
	// back, so give the last settles a moment (bounded) before reading.
	phase("Run summary (GET /vault/summary?agent_run_label=%s)", label)
	sum, polls, err := settledSummary(ctx, kb, label, int64(cfg.customers))
	if err != nil {
		fails.add("reading the summary: %v", err)
	} else {
		printSummary(sum, &fails)
		if polls > 1 {
			detail("(read %d times before every reservation had settled)", polls)
		}
		checkSummary(sum, label, int64(cfg.customers), int64(wantCharges), int64(wantCapHits), wantSpent, &fails)
	}
	if k, err := kb.getKey(ctx, key.KeyID); err != nil {
		fails.add("GET /vault/keys/%s: %v", key.KeyID, err)
	} else {
		spent := mustMicros("key spent_usd", k.SpentUSD, fails.add)
		left := mustMicros("key remaining_usd", k.RemainingUSD, fails.add)
		detail("key %s: status %s, spent %s of %s, remaining %s", k.KeyID, k.Status, spent.usd(), capMicros.usd(), left.usd())
		if spent != wantSpent {
			fails.add("GET /vault/keys/%s: spent_usd %s, want %s", k.KeyID, k.SpentUSD, wantSpent.usd())
		}
		if want := capMicros - wantSpent; left != want {
			fails.add("GET /vault/keys/%s: remaining_usd %s, want %s", k.KeyID, k.RemainingUSD, want.usd())
		}
	}

	// 4. The audit trail names every PaymentIntent Stripe returned.
	phase("Audit trail (GET /vault/audit?agent_run_label=%s)", label)
	if calls, err := kb.audit(ctx, label); err != nil {
		fails.add("reading the audit trail: %v", err)
	} else {
		checkAudit(calls, res.charged, wantCapHits, &fails)
	}

	// 5. Revocation, and the next call.
	phase("Revoking the key (DELETE /vault/keys/%s)…", key.KeyID)
	if k, err := kb.revokeKey(ctx, key.KeyID); err != nil {
		fails.add("revoking: %v", err)
	} else {
		detail("status %s, revoked_at %s", k.Status, deref(k.RevokedAt))
		if k.Status != "revoked" || k.RevokedAt == nil {
			fails.add("DELETE /vault/keys/%s answered status %q revoked_at %v, want revoked", k.KeyID, k.Status, deref(k.RevokedAt))
		}
	}
	counter.reset()
	status, code, err := nextCall(ctx, sc, label)
	if status == http.StatusUnauthorized && code == "keybrake_key_revoked" {
		phase("Next call: %d %s ✓", status, code)
	} else {
		phase("Next call: %d %s", status, code)
		fails.add("the call after revocation: %v; want 401 keybrake_key_revoked", err)
	}
	if n := counter.get(); n != 1 {
		fails.add("the call after revocation sent %d HTTP requests, want 1", n)
	}

	took := time.Since(started).Round(time.Millisecond)
	if n := fails.count(); n > 0 {
		fmt.Printf("\n✗ FAIL: %d expectation(s) broken (demo took %s):\n", n, took)
		for _, f := range fails.list {
			fmt.Printf("  - %s\n", f)
		}
		return 1
	}
	fmt.Printf("\n✓ PASS: %d charges, %d cap hits, exactly %s spent of a %s cap, refused after revocation (%s)\n",
		wantCharges, wantCapHits, wantSpent.usd(), capMicros.usd(), took)
	return 0
}

// result is one worker's outcome.
type result struct {
	customer string
	pi       *stripe.PaymentIntent
	err      error
}

// fanOut starts one worker per customer, releases them together and waits.
func fanOut(ctx context.Context, sc *stripe.Client, label string, customers []string, cents int64) []result {
	results := make([]result, len(customers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, cus := range customers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			params := &stripe.PaymentIntentCreateParams{
				Amount:   stripe.Int64(cents),
				Currency: stripe.String(string(stripe.CurrencyUSD)),
				Customer: stripe.String(cus),
			}
			params.AddMetadata("agent_run_label", label)
			params.AddMetadata("customer", cus)
			// Same run + same customer = same charge, whoever retries it.
			params.SetIdempotencyKey(label + ":" + cus)
			pi, err := sc.V1PaymentIntents.Create(ctx, params)
			results[i] = result{customer: cus, pi: pi, err: err}
		}()
	}
	close(start)
	wg.Wait()
	return results
}

// outcome is the fan-out, sorted.
type outcome struct {
	charged   map[string]string // pi id → customer
	capHits   int
	sample    string // one cap hit's message, as stripe-go reports it
	anomalies []string
	took      time.Duration
}

func classify(results []result, cents int64) outcome {
	out := outcome{charged: map[string]string{}}
	other := map[string]int{}
	for _, r := range results {
		if r.err == nil {
			switch {
			case r.pi == nil || !strings.HasPrefix(r.pi.ID, "pi_"):
				other["a success without a pi_… id"]++
			case r.pi.Amount != cents:
				other[fmt.Sprintf("PaymentIntent amount %d, want %d", r.pi.Amount, cents)]++
			case out.charged[r.pi.ID] != "":
				other["the same PaymentIntent id returned twice: "+r.pi.ID]++
			default:
				out.charged[r.pi.ID] = r.customer
			}
			continue
		}
		if problem := capHitProblem(r.err); problem != "" {
			other[problem]++
			continue
		}
		out.capHits++
		if out.sample == "" {
			var se *stripe.Error
			errors.As(r.err, &se)
			out.sample = se.Msg
		}
	}
	keys := make([]string, 0, len(other))
	for k := range other {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.anomalies = append(out.anomalies, fmt.Sprintf("%d call(s): %s", other[k], k))
	}
	return out
}

// capHitProblem says what makes err something other than the cap hit
// Keybrake promises, or "" if it is exactly that: a *stripe.Error with
// status 429, type invalid_request_error, code keybrake_cap_hit, and the
// headers X-Keybrake-Cap-Hit: true and Stripe-Should-Retry: false.
func capHitProblem(err error) string {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Sprintf("not a *stripe.Error (%T): %v", err, err)
	}
	var hdr http.Header
	if se.LastResponse != nil {
		hdr = se.LastResponse.Header
	}
	switch {
	case se.HTTPStatusCode != http.StatusTooManyRequests || se.Code != "keybrake_cap_hit":
		return fmt.Sprintf("stripe error %d %s %q: %s", se.HTTPStatusCode, se.Type, se.Code, se.Msg)
	case se.Type != stripe.ErrorTypeInvalidRequest:
		return fmt.Sprintf("cap hit with error type %q, want invalid_request_error", se.Type)
	case hdr == nil:
		return "cap hit without the response (stripe.Error.LastResponse is nil)"
	case hdr.Get("X-Keybrake-Cap-Hit") != "true":
		return fmt.Sprintf("cap hit with X-Keybrake-Cap-Hit %q, want true", hdr.Get("X-Keybrake-Cap-Hit"))
	case hdr.Get("Stripe-Should-Retry") != "false":
		return fmt.Sprintf("cap hit with Stripe-Should-Retry %q, want false", hdr.Get("Stripe-Should-Retry"))
	case se.Msg == "":
		return "cap hit without a message"
	}
	return ""
}

// settledSummary reads the run summary until every call is counted and no
// reservation is outstanding, for at most 5 seconds; it returns the last
// summary read either way.
func settledSummary(ctx context.Context, kb *api, label string, calls int64) (summary, int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for polls := 1; ; polls++ {
		s, err := kb.summary(ctx, label)
		if err != nil {
			return s, polls, err
		}
		reserved, _ := parseMicros(s.ReservedUSD)
		if (s.Calls >= calls && reserved == 0) || time.Now().After(deadline) {
			return s, polls, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func printSummary(s summary, fails *failures) {
	spent := mustMicros("summary spent_usd", s.SpentUSD, fails.add)
	reserved := mustMicros("summary reserved_usd", s.ReservedUSD, fails.add)
	rows := [][2]string{
		{"calls", fmt.Sprint(s.Calls)},
		{"forwarded to Stripe", fmt.Sprint(s.Forwarded)},
		{"stopped at the cap (429)", fmt.Sprint(s.CapHits)},
		{"other refusals", fmt.Sprint(s.Refused)},
		{"spent", spent.usd()},
		{"still reserved", reserved.usd()},
	}
	fmt.Println("    ┌──────────────────────────┬──────────────┐")
	for _, r := range rows {
		fmt.Printf("    │ %-24s │ %12s │\n", r[0], r[1])
	}
	fmt.Println("    └──────────────────────────┴──────────────┘")
	for _, e := range s.ByEndpoint {
		es, _ := parseMicros(e.SpentUSD)
		detail("by endpoint: %s %s — %d calls, %d forwarded, %d cap hits, %s", e.Vendor, e.Endpoint,
			e.Calls, e.Forwarded, e.CapHits, es.usd())
	}
}

func checkSummary(s summary, label string, calls, charges, capHits int64, spent micros, fails *failures) {
	check := func(field string, got, want int64) {
		if got != want {
			fails.add("GET /vault/summary: %s = %d, want %d", field, got, want)
		}
	}
	if s.AgentRunLabel != label {
		fails.add("GET /vault/summary: agent_run_label %q, want %q", s.AgentRunLabel, label)
	}
	check("calls", s.Calls, calls)
	check("forwarded", s.Forwarded, charges)
	check("cap_hits", s.CapHits, capHits)
	check("refused", s.Refused, 0)
	if got, err := parseMicros(s.SpentUSD); err == nil && got != spent {
		fails.add("GET /vault/summary: spent_usd = %s, want exactly %s", s.SpentUSD, spent.usd())
	}
	if got, err := parseMicros(s.ReservedUSD); err == nil && got != 0 {
		fails.add("GET /vault/summary: reserved_usd = %s, want 0 once every call is settled", s.ReservedUSD)
	}
}

// checkAudit matches the audit trail against what the SDK saw: one
// forwarded call per PaymentIntent, with its pi_… id, and the cap_hit
// refusals counted (a record per key and minute, its count the calls).
func checkAudit(calls []call, charged map[string]string, capHits int, fails *failures) {
	byOutcome := map[string]int{}
	var txns, noTxn, unknown []string
	seen := map[string]bool{}
	recorded := 0
	for _, c := range calls {
		byOutcome[c.Outcome] += c.Count
		recorded += c.Count
		if c.Outcome != "forwarded" {
			continue
		}
		if c.VendorTxnID == "" {
			noTxn = append(noTxn, c.CallID)
			continue
		}
		txns = append(txns, c.VendorTxnID)
		seen[c.VendorTxnID] = true
		if _, ok := charged[c.VendorTxnID]; !ok {
			unknown = append(unknown, c.VendorTxnID)
		}
	}
	var missing []string
	for pi := range charged {
		if !seen[pi] {
			missing = append(missing, pi)
		}
	}
	sort.Strings(txns)
	sort.Strings(missing)
	outcomes := make([]string, 0, len(byOutcome))
	for o, n := range byOutcome {
		outcomes = append(outcomes, fmt.Sprintf("%d %s", n, o))
	}
	sort.Strings(outcomes)
	detail("%d calls recorded in %d records: %s", recorded, len(calls), strings.Join(outcomes, ", "))
	detail("PaymentIntents: %s", firstFew(txns))
	if len(noTxn) > 0 {
		fails.add("audit: %d forwarded call(s) without a vendor_txn_id: %s", len(noTxn), firstFew(noTxn))
	}
	if len(unknown) > 0 {
		fails.add("audit: %d forwarded call(s) name a PaymentIntent the SDK never received: %s", len(unknown), firstFew(unknown))
	}
	if len(missing) > 0 {
		fails.add("audit: %d PaymentIntent(s) the SDK received are missing from the audit trail: %s", len(missing), firstFew(missing))
	}
	if byOutcome["forwarded"] != len(charged) {
		fails.add("audit: %d forwarded calls, want %d (one per PaymentIntent created)", byOutcome["forwarded"], len(charged))
	}
	if byOutcome["cap_hit"] != capHits {
		fails.add("audit: %d cap_hit calls, want %d", byOutcome["cap_hit"], capHits)
	}
}

// firstFew lists the first three of a list and how many more there are.
func firstFew(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	shown := list[:min(len(list), 3)]
	s := strings.Join(shown, ", ")
	if len(list) > len(shown) {
		s += fmt.Sprintf(", … and %d more", len(list)-len(shown))
	}
	return s
}

// nextCall is one more charge with the revoked key. It returns the status
// and error code stripe-go saw.
func nextCall(ctx context.Context, sc *stripe.Client, label string) (int, string, error) {
	params := &stripe.PaymentIntentCreateParams{
		Amount:   stripe.Int64(2000),
		Currency: stripe.String(string(stripe.CurrencyUSD)),
		Customer: stripe.String("cus_demo_after_revoke"),
	}
	params.SetIdempotencyKey(label + ":after-revoke")
	pi, err := sc.V1PaymentIntents.Create(ctx, params)
	if err == nil {
		return http.StatusOK, "", fmt.Errorf("it went through: PaymentIntent %s", pi.ID)
	}
	var se *stripe.Error
	if !errors.As(err, &se) {
		return 0, "", fmt.Errorf("not a *stripe.Error (%T): %v", err, err)
	}
	return se.HTTPStatusCode, string(se.Code), fmt.Errorf("stripe error %d %s %q: %s", se.HTTPStatusCode, se.Type, se.Code, se.Msg)
}

// countingTransport counts the HTTP requests the SDK really sends, so the
// demo can show that no cap hit was retried.
type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, "/vault/") {
		t.n.Add(1)
	}
	return t.next.RoundTrip(r)
}

func (t *countingTransport) reset()     { t.n.Store(0) }
func (t *countingTransport) get() int64 { return t.n.Load() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
