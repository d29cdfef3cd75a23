package ledgertest

import (
	"fmt"
	"sync"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// refusalFlood is how many refusals testRefusalFlood records.
const refusalFlood = 2000

// testRefusalFlood: a revoked key's flood of refused calls, recorded from
// several goroutines at once, adds one record per minute with a count, and
// the summary still counts every call.
func testRefusalFlood(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/flood" })
	if _, err := f.s.RevokeKey(f.ctx, k.ID, t0); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	// t0 is on a minute: 50 ms apart, the flood spans two minutes.
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < refusalFlood; i += workers {
				at := t0.Add(time.Duration(i) * 50 * time.Millisecond)
				err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: fmt.Sprintf("callFlood%05d", i), KeyID: k.ID,
					RunLabel: k.RunLabel, Vendor: k.Vendor, Method: "POST", Path: fmt.Sprintf("/v1/charges/%d", i),
					StatusCode: 401, Outcome: ledger.OutcomeRevoked, StartedAt: at, FinishedAt: ptr(at.Add(time.Millisecond))})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("RecordRefusal: %v", err)
	}
	// Another outcome in the same minute is a record of its own.
	if err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: "callFloodBad", KeyID: k.ID, RunLabel: k.RunLabel,
		Vendor: k.Vendor, Method: "POST", Path: "/v1/charges", StatusCode: 400, Outcome: ledger.OutcomeBadRequest,
		StartedAt: t0.Add(time.Second)}); err != nil {
		t.Fatalf("RecordRefusal: %v", err)
	}

	calls := f.auditAll(ledger.AuditFilter{KeyID: k.ID})
	if len(calls) != 3 {
		t.Fatalf("%d refusals left %d records; want 3 (two minutes of revoked, one bad request):\n%+v", refusalFlood+1, len(calls), calls)
	}
	var revoked int64
	for _, c := range calls {
		if c.Outcome == ledger.OutcomeRevoked {
			revoked += c.Count
		}
	}
	if revoked != refusalFlood {
		t.Errorf("revoked records count %d calls; want %d", revoked, refusalFlood)
	}
	last := t0.Add((refusalFlood-1)*50*time.Millisecond + time.Millisecond)
	if c := calls[2]; c.FinishedAt == nil || !c.FinishedAt.Equal(last) || c.StartedAt.Minute() != t0.Minute()+1 {
		t.Errorf("second minute's record: started %s, finished %v; want its first refusal's start and %s as its end", c.StartedAt, c.FinishedAt, last)
	}
	rows, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: k.RunLabel})
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	base := ledger.SummaryRow{RunLabel: k.RunLabel, Vendor: k.Vendor}
	bad, rev := base, base
	bad.Outcome, bad.Calls, bad.Refused = ledger.OutcomeBadRequest, 1, 1
	rev.Outcome, rev.Calls, rev.Refused = ledger.OutcomeRevoked, refusalFlood, refusalFlood
	f.wantSummaryRows("flood", rows, []ledger.SummaryRow{bad, rev})
	f.wantUsage(k.ID, t0, usage{})
}

// testRetention deletes old final calls while calls keep flowing: exactly
// the settled, released and refused calls older than Keep, never a
// reserved, unknown or unpriced one, and no key's totals or summary move.
func testRetention(f *fixture) {
	t := f.t
	r, ok := f.s.(ledger.Retainer)
	if !ok {
		t.Skip("the store does not delete calls")
	}
	long := func(k *ledger.Key) { k.RunLabel, k.ExpiresAt = "run/old", t0.AddDate(0, 2, 0) }
	kA := f.newKey(long)
	kFlow := f.newKey(func(k *ledger.Key) { long(k); k.RunLabel = "run/flow" })
	old, recent := t0, t0.AddDate(0, 0, 20)
	now := recent.Add(time.Hour)
	at := func(base time.Time, s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	settled := func(base time.Time, s int) string {
		id := f.reserve(kA, usd("1"), at(base, s), ledger.OutcomeForwarded)
		f.settle(id, ledger.Settlement{StatusCode: 200, Cost: usd("0.5"), Now: at(base, s)})
		return id
	}
	refuse := func(base time.Time, s int) string {
		id := fmt.Sprintf("callRefused%d", f.next())
		if err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: id, KeyID: kA.ID, RunLabel: kA.RunLabel, Vendor: kA.Vendor,
			Method: "DELETE", Path: "/v1/customers/cus_1", StatusCode: 403, Outcome: ledger.OutcomeEndpointDenied,
			StartedAt: at(base, s)}); err != nil {
			t.Fatalf("RecordRefusal: %v", err)
		}
		return id
	}
	eligible := map[string]bool{settled(old, 1): true, settled(old, 2): true, settled(old, 3): true, refuse(old, 4): true}
	released := f.reserve(kA, usd("1"), at(old, 5), ledger.OutcomeForwarded)
	f.release(released, ledger.Settlement{StatusCode: 402, Now: at(old, 5)})
	eligible[released] = true
	eligible[f.reserve(kA, usd("500"), at(old, 6), ledger.OutcomeCapHit)] = true
	reserved := f.reserve(kA, usd("2"), at(old, 7), ledger.OutcomeForwarded)
	unknown := f.reserve(kA, usd("3"), at(old, 8), ledger.OutcomeForwarded)
	f.markUnknown(unknown, ledger.Settlement{StatusCode: 502, Now: at(old, 8)})
	unpriced := f.reserve(kA, usd("0.1"), at(old, 9), ledger.OutcomeForwarded)
	f.settle(unpriced, ledger.Settlement{StatusCode: 201, Cost: usd("0.1"), CostState: ledger.CostUnpriced, Now: at(old, 9)})
	kept := []string{reserved, unknown, unpriced, settled(recent, 1), refuse(recent, 2)}

	before := f.getKey(kA.ID, now)
	summaryBefore, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: kA.RunLabel})
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}

	var deleted int
	ret := &ledger.Retention{Store: r, Keep: ledger.MinRetainCalls, Batch: 2, Now: func() time.Time { return now },
		Deleted: func(n int) { deleted += n }}
	// Calls keep flowing on another key while retention deletes.
	const flowing = 30
	flowErr := make(chan error, 1)
	go func() {
		defer close(flowErr)
		for i := range flowing {
			req := f.request(kFlow, usd("1"), at(now, i), nil)
			res, err := f.s.Reserve(f.ctx, req)
			if err == nil && res.Outcome != ledger.OutcomeForwarded {
				err = fmt.Errorf("outcome %s", res.Outcome)
			}
			if err == nil {
				err = f.s.Settle(f.ctx, req.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("0.25"), Now: at(now, i)})
			}
			if err != nil {
				flowErr <- fmt.Errorf("flowing call %d: %w", i, err)
				return
			}
		}
	}()
	n, err := ret.RunOnce(f.ctx)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if err := <-flowErr; err != nil {
		t.Fatal(err)
	}
	if n != len(eligible) || deleted != n {
		t.Errorf("RunOnce deleted %d calls (metric %d); want %d", n, deleted, len(eligible))
	}
	if n, err := ret.RunOnce(f.ctx); err != nil || n != 0 {
		t.Errorf("second RunOnce deleted %d, %v; want nothing", n, err)
	}
	f.wantIDs("calls kept", callIDs(f.auditAll(ledger.AuditFilter{KeyID: kA.ID})), kept)
	if got := len(f.auditAll(ledger.AuditFilter{KeyID: kFlow.ID})); got != flowing {
		t.Errorf("%d flowing calls in the audit; want %d", got, flowing)
	}

	after := f.getKey(kA.ID, now)
	if after.Spent != before.Spent || after.Reserved != before.Reserved || after.Calls != before.Calls || after.CapHits != before.CapHits {
		t.Errorf("key totals moved: before spent %s reserved %s calls %d cap hits %d, after %s %s %d %d",
			before.Spent, before.Reserved, before.Calls, before.CapHits, after.Spent, after.Reserved, after.Calls, after.CapHits)
	}
	f.wantUsage(kFlow.ID, now, usage{Spent: usd("7.5"), DaySpent: usd("7.5"), Calls: flowing})
	summaryAfter, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: kA.RunLabel})
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	f.wantSummaryRows("after retention", summaryAfter, summaryBefore)

	short := &ledger.Retention{Store: r, Keep: 24 * time.Hour}
	if _, err := short.RunOnce(f.ctx); err == nil {
		t.Errorf("RunOnce with retain_calls 24h: no error; want ErrRetainTooShort")
	}
}

// reserveFlood is how many calls testReserveRefusalFlood sends per key.
const reserveFlood = 600

// testReserveRefusalFlood: the refusals Reserve decides itself, a key at
// its cap, a key revoked after its first call and a key past its
// max_calls, each sending a flood in batches and alone over two minutes,
// add one record per key, outcome and minute, counting every call; the
// key's counters and the summary count every call too.
func testReserveRefusalFlood(f *fixture) {
	t := f.t
	capped := f.newKey(func(k *ledger.Key) { k.RunLabel, k.TotalCap = "run/rflood", capOf("2") })
	revoked := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/rflood" })
	ruled := f.newKey(func(k *ledger.Key) { k.RunLabel, k.Rules = "run/rflood", f.mustRules(`{"max_calls": 1}`) })
	for _, k := range []ledger.Key{capped, revoked, ruled} {
		r := f.moving(k, t0)
		r.Estimate = usd("2")
		f.reserveReq(r, ledger.OutcomeForwarded)
	}
	if _, err := f.s.RevokeKey(f.ctx, revoked.ID, t0); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	// t0 is on a minute: 150 ms apart, each flood spans two minutes.
	b, batches := f.s.(ledger.Batcher)
	for i := 0; i < reserveFlood; i += 10 {
		var ops []ledger.Op
		for j := i; j < i+10; j++ {
			at := t0.Add(time.Duration(j+1) * 150 * time.Millisecond)
			for _, k := range []ledger.Key{capped, revoked, ruled} {
				ops = append(ops, reserveOp(f.moving(k, at)))
			}
		}
		if !batches || i%20 == 10 {
			for _, op := range ops {
				if _, err := f.s.Reserve(f.ctx, *op.Reserve); err != nil {
					t.Fatalf("Reserve: %v", err)
				}
			}
			continue
		}
		res, errs := b.WriteBatch(f.ctx, ops)
		for j := range ops {
			if errs[j] != nil || res[j].Outcome == ledger.OutcomeForwarded {
				t.Fatalf("flood call %d: %+v, %v; want a refusal", j, res[j], errs[j])
			}
		}
	}
	want := map[string]string{capped.ID: ledger.OutcomeCapHit, revoked.ID: ledger.OutcomeRevoked, ruled.ID: ledger.OutcomeRuleDenied}
	for _, k := range []ledger.Key{capped, revoked, ruled} {
		calls := f.auditAll(ledger.AuditFilter{KeyID: k.ID})
		var refused int64
		for _, c := range calls {
			if c.Outcome == want[k.ID] {
				refused += c.Count
			}
		}
		if len(calls) != 3 || refused != reserveFlood {
			t.Fatalf("key %s: %d calls refused %s left %d records counting %d; want 3 records (its call and two minutes) counting %d",
				k.ID, reserveFlood, want[k.ID], len(calls), refused, reserveFlood)
		}
	}
	if u := f.getKey(capped.ID, t0); u.CapHits != reserveFlood {
		t.Errorf("capped key counts %d cap hits; want %d", u.CapHits, reserveFlood)
	}
	rows, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: "run/rflood"})
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	counted := map[string]int64{}
	for _, r := range rows {
		if r.Outcome != ledger.OutcomeForwarded {
			counted[r.Outcome] += r.Calls
			if r.CapHits+r.Refused != r.Calls {
				t.Errorf("summary row %+v: its calls are not all refusals", r)
			}
		}
	}
	for _, o := range want {
		if counted[o] != reserveFlood {
			t.Errorf("summary counts %d %s; want %d (%+v)", counted[o], o, reserveFlood, rows)
		}
	}
}

// testRefusalBucketShared: a refusal the gate records (RecordRefusal, with
// ledger.RefusalBucket) and one the ledger decides inside Reserve, for the
// same key, vendor, outcome (and rule) and minute, are counted in one
// record: the backends' own bucket names (Postgres builds its in SQL) are
// the same string as the Go one.
func testRefusalBucketShared(f *fixture) {
	t := f.t
	revoked := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/shared" })
	ruled := f.newKey(func(k *ledger.Key) { k.RunLabel, k.Rules = "run/shared", f.mustRules(`{"max_calls": 1}`) })
	f.reserveReq(f.moving(ruled, t0), ledger.OutcomeForwarded)
	if _, err := f.s.RevokeKey(f.ctx, revoked.ID, t0); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	// A minute that is not t0's, and a time late in it.
	minute := t0.Add(17*time.Minute + 59*time.Second + 999*time.Millisecond)
	for i, c := range []struct {
		key           ledger.Key
		outcome, rule string
		status        int
	}{{revoked, ledger.OutcomeRevoked, "", 401}, {ruled, ledger.OutcomeRuleDenied, rules.RuleMaxCalls, 429}} {
		early := minute.Add(-40 * time.Second)
		if err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: fmt.Sprintf("gateRefused%d", i), KeyID: c.key.ID,
			RunLabel: c.key.RunLabel, Vendor: c.key.Vendor, Method: "POST", Path: "/v1/payment_intents",
			Endpoint: "POST /v1/payment_intents", StatusCode: c.status, Outcome: c.outcome, Rule: c.rule,
			CostState: ledger.CostNone, StartedAt: early}); err != nil {
			t.Fatalf("RecordRefusal: %v", err)
		}
		f.reserveRule(f.moving(c.key, minute), c.outcome, c.rule)
		if b, ok := f.s.(ledger.Batcher); ok {
			res, errs := b.WriteBatch(f.ctx, []ledger.Op{reserveOp(f.moving(c.key, minute))})
			if errs[0] != nil || res[0].Outcome != c.outcome {
				t.Fatalf("batched refusal: %+v, %v", res[0], errs[0])
			}
		}
		records := f.auditAll(ledger.AuditFilter{KeyID: c.key.ID, Outcome: c.outcome})
		_, batched := f.s.(ledger.Batcher)
		want := int64(2)
		if batched {
			want = 3
		}
		if len(records) != 1 || records[0].Count != want {
			t.Fatalf("%s refusals of one minute, recorded by the gate and by the ledger: %d records %+v; want one counting %d",
				c.outcome, len(records), records, want)
		}
	}
}
