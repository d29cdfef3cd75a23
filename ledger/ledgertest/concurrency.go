package ledgertest

import (
	"fmt"
	"sync"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// concurrentCalls is how many goroutines race for one key's cap.
const concurrentCalls = 500

// raceResult counts what the concurrent Reserve calls returned.
type raceResult struct {
	forwarded, capHits int
	budgetHits         int
	forwardedIDs       []string
	ruleDenied         map[string]int // by rule
	errs               []error
	other              []string
}

// raceReserve starts every request at once (a closed channel releases them
// together) and counts the outcomes.
func (f *fixture) raceReserve(reqs []ledger.ReserveRequest) raceResult {
	var (
		mu    sync.Mutex
		res   raceResult
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for _, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out, err := f.s.Reserve(f.ctx, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.errs = append(res.errs, err)
			case out.Outcome == ledger.OutcomeForwarded:
				res.forwarded++
				res.forwardedIDs = append(res.forwardedIDs, r.CallID)
			case out.Outcome == ledger.OutcomeCapHit:
				res.capHits++
			case out.Outcome == ledger.OutcomeBudgetHit:
				res.budgetHits++
			case out.Outcome == ledger.OutcomeRuleDenied:
				if res.ruleDenied == nil {
					res.ruleDenied = map[string]int{}
				}
				res.ruleDenied[out.Rule]++
			default:
				res.other = append(res.other, out.Outcome)
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	f.t.Logf("%d concurrent Reserve calls took %v", len(reqs), time.Since(began))
	if len(res.errs) > 0 {
		f.t.Fatalf("%d of %d Reserve calls failed; first: %v", len(res.errs), len(reqs), res.errs[0])
	}
	if len(res.other) > 0 {
		f.t.Fatalf("unexpected outcomes: %q", res.other)
	}
	return res
}

// testConcurrentLifetimeCap: 500 callers race for a lifetime cap that fits
// exactly 137 of them. Exactly 137 may win, and the reservations must add
// up to the cap to the micro-dollar.
func testConcurrentLifetimeCap(f *fixture) {
	const fit = 137
	estimate := usd("0.37")
	limit := estimate * fit
	k := f.newKey(func(k *ledger.Key) { k.TotalCap = &limit })
	now := t0.Add(time.Minute)

	reqs := make([]ledger.ReserveRequest, concurrentCalls)
	for i := range reqs {
		reqs[i] = f.request(k, estimate, now, func(r *ledger.ReserveRequest) { r.CallID = fmt.Sprintf("race%04d", i) })
	}
	res := f.raceReserve(reqs)
	if res.forwarded != fit || res.capHits != concurrentCalls-fit {
		f.t.Fatalf("forwarded %d, cap hits %d; want %d, %d", res.forwarded, res.capHits, fit, concurrentCalls-fit)
	}
	f.wantUsage(k.ID, now, usage{Reserved: limit, DayReserved: limit, Calls: fit, CapHits: concurrentCalls - fit})
	f.wantSummary(k.RunLabel, fit, concurrentCalls-fit, 0, limit)

	// Settling every winner at its estimate, concurrently, turns the
	// reservations into spend without losing a micro-dollar.
	var wg sync.WaitGroup
	errs := make(chan error, len(res.forwardedIDs))
	for _, id := range res.forwardedIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.s.Settle(f.ctx, id, ledger.Settlement{StatusCode: 200, Cost: estimate, Now: now}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Fatalf("concurrent Settle: %v", err)
	}
	f.wantUsage(k.ID, now, usage{Spent: limit, DaySpent: limit, Calls: fit, CapHits: concurrentCalls - fit})
	f.wantSummary(k.RunLabel, fit, concurrentCalls-fit, limit, 0)

	// The key is spent: another burst is refused in full.
	more := make([]ledger.ReserveRequest, 50)
	for i := range more {
		more[i] = f.request(k, usd("0.000001"), now, nil)
	}
	if res := f.raceReserve(more); res.forwarded != 0 || res.capHits != 50 {
		f.t.Fatalf("after spending the cap: forwarded %d, cap hits %d; want 0, 50", res.forwarded, res.capHits)
	}
}

// testConcurrentDailyCap: 500 callers race on one key whose daily cap fits
// 101 of them, half of them on one UTC day and half on the next, so the two
// days' rows are contended at once. Each day admits exactly 101.
func testConcurrentDailyCap(f *fixture) {
	const fit = 101
	estimate := usd("0.53")
	daily := estimate * fit
	k := f.newKey(func(k *ledger.Key) { k.DailyCap, k.TotalCap = &daily, nil })
	day1 := ledger.Day(t0).Add(24*time.Hour - time.Microsecond) // the last microsecond of day 1
	day2 := ledger.Day(t0).Add(24 * time.Hour)

	reqs := make([]ledger.ReserveRequest, concurrentCalls)
	for i := range reqs {
		now := day1
		if i%2 == 1 {
			now = day2
		}
		reqs[i] = f.request(k, estimate, now, func(r *ledger.ReserveRequest) { r.CallID = fmt.Sprintf("race%04d", i) })
	}
	res := f.raceReserve(reqs)
	if res.forwarded != 2*fit || res.capHits != concurrentCalls-2*fit {
		f.t.Fatalf("forwarded %d, cap hits %d; want %d, %d", res.forwarded, res.capHits, 2*fit, concurrentCalls-2*fit)
	}
	total := usage{Reserved: 2 * daily, Calls: 2 * fit, CapHits: concurrentCalls - 2*fit}
	for _, day := range []time.Time{day1, day2} {
		u := total
		u.DayReserved = daily
		f.wantUsage(k.ID, day, u)
	}
	perDay := map[string]int{}
	for _, c := range f.auditAll(ledger.AuditFilter{KeyID: k.ID, Outcome: ledger.OutcomeForwarded}) {
		perDay[ledger.Day(c.StartedAt).Format("2006-01-02")]++
	}
	if perDay[day1.Format("2006-01-02")] != fit || perDay[day2.Format("2006-01-02")] != fit {
		f.t.Fatalf("forwarded per day = %v; want %d each", perDay, fit)
	}
}

// wantSummary checks the summary rows of a run that used one endpoint:
// its cap hits, if any, then its forwarded calls.
func (f *fixture) wantSummary(run string, forwarded, capHits int, spent, reserved money.Micros) {
	f.t.Helper()
	rows, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: run})
	if err != nil {
		f.t.Fatalf("Summary: %v", err)
	}
	var want []ledger.SummaryRow
	base := ledger.SummaryRow{RunLabel: run, Vendor: "stripe", Endpoint: "POST /v1/payment_intents"}
	if capHits > 0 {
		r := base
		r.Outcome, r.Calls, r.CapHits = ledger.OutcomeCapHit, int64(capHits), int64(capHits)
		want = append(want, r)
	}
	if forwarded > 0 {
		r := base
		r.Outcome, r.Calls, r.Forwarded, r.Spent, r.Reserved = ledger.OutcomeForwarded, int64(forwarded), int64(forwarded), spent, reserved
		want = append(want, r)
	}
	f.wantSummaryRows(run, rows, want)
}
