package ledgertest

import (
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

func testRecordRefusal(f *fixture) {
	t := f.t
	k := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/refusals" })
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	refusals := []ledger.Call{
		{ // a bad credential: no key known
			CallID: "callNoKey", Vendor: "stripe", Method: "POST", Path: "/v1/charges",
			StatusCode: 401, Outcome: ledger.OutcomeUnauthenticated, StartedAt: at(1), FinishedAt: ptr(at(1).Add(time.Millisecond)),
		},
		{ // outside the allowlist; money fields given by mistake are not stored
			CallID: "callDenied", KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe", Method: "DELETE",
			Path: "/v1/customers/cus_1", StatusCode: 403, Outcome: ledger.OutcomeEndpointDenied,
			IdempotencyKey: "idemZ", Reserved: usd("5"), Cost: usd("5"), CostState: ledger.CostSettled,
			StartedAt: at(2), FinishedAt: ptr(at(2).Add(time.Millisecond)),
		},
		{
			CallID: "callNoPrice", KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", StatusCode: 403,
			Outcome: ledger.OutcomeUnknownCost, StartedAt: at(3), FinishedAt: ptr(at(3)),
		},
	}
	for _, c := range refusals {
		if err := f.s.RecordRefusal(f.ctx, c); err != nil {
			t.Fatalf("RecordRefusal(%s): %v", c.CallID, err)
		}
	}
	got := f.auditAll(ledger.AuditFilter{})
	f.wantIDs("audit", callIDs(got), []string{"callNoKey", "callDenied", "callNoPrice"})
	for i, want := range refusals {
		want.Reserved, want.Cost, want.CostState = 0, 0, ledger.CostNone
		f.wantCall(got[i], want)
	}
	// Refusals before reservation move no counter.
	f.wantUsage(k.ID, t0, usage{})
}

func testAuditFilters(f *fixture) {
	t := f.t
	kA := f.newKey(func(k *ledger.Key) { k.RunLabel, k.TotalCap = "run/a", capOf("2") })
	kB := f.newKey(func(k *ledger.Key) { k.RunLabel, k.Vendor = "run/b", "twilio" })
	kC := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/b" })
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	twilioMsg := func(r *ledger.ReserveRequest) {
		r.Path, r.Endpoint = "/2010-04-01/Accounts/AC1/Messages.json", "POST /2010-04-01/Accounts/*/Messages.json"
	}

	c1 := f.request(kA, usd("1"), at(1), func(r *ledger.ReserveRequest) { r.IdempotencyKey = "idem1" })
	f.reserveReq(c1, ledger.OutcomeForwarded)
	f.settle(c1.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), VendorAmount: ptr(int64(100)),
		VendorCurrency: "usd", VendorTxnID: "pi_1", Now: at(1).Add(time.Second)})
	c2 := f.request(kB, usd("0.01"), at(2), twilioMsg)
	f.reserveReq(c2, ledger.OutcomeForwarded)
	f.settle(c2.CallID, ledger.Settlement{StatusCode: 201, Cost: usd("0.01"), CostState: ledger.CostUnpriced, Now: at(2)})
	c3 := f.reserve(kA, usd("5"), at(3), ledger.OutcomeCapHit)
	c4 := f.reserve(kC, usd("1"), at(4), ledger.OutcomeForwarded)
	f.release(c4, ledger.Settlement{StatusCode: 402, Now: at(4)})
	c5 := f.reserve(kA, usd("1"), at(5), ledger.OutcomeForwarded)
	if err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: "callAnon", Vendor: "stripe", Method: "GET",
		Path: "/v1/balance", StatusCode: 401, Outcome: ledger.OutcomeUnauthenticated, StartedAt: at(6)}); err != nil {
		t.Fatalf("RecordRefusal: %v", err)
	}
	c7 := f.request(kB, usd("0.01"), at(7), twilioMsg)
	f.reserveReq(c7, ledger.OutcomeForwarded)
	f.markUnknown(c7.CallID, ledger.Settlement{StatusCode: 503, Outcome: ledger.OutcomeUpstreamError, Now: at(7)})

	ids := []string{"", c1.CallID, c2.CallID, c3, c4, c5, "callAnon", c7.CallID}
	pick := func(ns ...int) []string {
		out := []string{}
		for _, n := range ns {
			out = append(out, ids[n])
		}
		return out
	}
	cases := []struct {
		name   string
		filter ledger.AuditFilter
		want   []string
	}{
		{"all", ledger.AuditFilter{}, pick(1, 2, 3, 4, 5, 6, 7)},
		{"run a", ledger.AuditFilter{RunLabel: "run/a"}, pick(1, 3, 5)},
		{"run b", ledger.AuditFilter{RunLabel: "run/b"}, pick(2, 4, 7)},
		{"key A", ledger.AuditFilter{KeyID: kA.ID}, pick(1, 3, 5)},
		{"key C", ledger.AuditFilter{KeyID: kC.ID}, pick(4)},
		{"twilio", ledger.AuditFilter{Vendor: "twilio"}, pick(2, 7)},
		{"stripe", ledger.AuditFilter{Vendor: "stripe"}, pick(1, 3, 4, 5, 6)},
		{"forwarded", ledger.AuditFilter{Outcome: ledger.OutcomeForwarded}, pick(1, 2, 4, 5)},
		{"cap hit", ledger.AuditFilter{Outcome: ledger.OutcomeCapHit}, pick(3)},
		{"upstream error", ledger.AuditFilter{Outcome: ledger.OutcomeUpstreamError}, pick(7)},
		{"settled", ledger.AuditFilter{CostState: ledger.CostSettled}, pick(1)},
		{"unpriced", ledger.AuditFilter{CostState: ledger.CostUnpriced}, pick(2)},
		{"released", ledger.AuditFilter{CostState: ledger.CostReleased}, pick(4)},
		{"reserved", ledger.AuditFilter{CostState: ledger.CostReserved}, pick(5)},
		{"unknown", ledger.AuditFilter{CostState: ledger.CostUnknown}, pick(7)},
		{"none", ledger.AuditFilter{CostState: ledger.CostNone}, pick(3, 6)},
		{"since is inclusive", ledger.AuditFilter{Since: at(3)}, pick(3, 4, 5, 6, 7)},
		{"until is exclusive", ledger.AuditFilter{Until: at(3)}, pick(1, 2)},
		{"since and until", ledger.AuditFilter{Since: at(2), Until: at(5)}, pick(2, 3, 4)},
		{"a microsecond window", ledger.AuditFilter{Since: at(4), Until: at(4).Add(time.Microsecond)}, pick(4)},
		{"run a still reserved", ledger.AuditFilter{RunLabel: "run/a", CostState: ledger.CostReserved}, pick(5)},
		{"stripe since 4", ledger.AuditFilter{Vendor: "stripe", Since: at(4)}, pick(4, 5, 6)},
		{"nothing", ledger.AuditFilter{RunLabel: "run/a", Vendor: "twilio"}, pick()},
	}
	for _, c := range cases {
		f.wantIDs("audit "+c.name, callIDs(f.auditAll(c.filter)), c.want)
	}

	// Every field of a call as the audit shows it.
	f.wantCall(f.auditAll(ledger.AuditFilter{KeyID: kA.ID})[0], ledger.Call{
		CallID: c1.CallID, KeyID: kA.ID, RunLabel: "run/a", Vendor: "stripe", Method: "POST",
		Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", StatusCode: 200,
		Outcome: ledger.OutcomeForwarded, Reserved: usd("1"), Cost: usd("1"),
		VendorAmount: ptr(int64(100)), VendorCurrency: "usd", VendorTxnID: "pi_1", IdempotencyKey: "idem1",
		CostState: ledger.CostSettled, StartedAt: at(1), FinishedAt: ptr(at(1).Add(time.Second)),
	})
}

func testAuditPaging(f *fixture) {
	even := f.newKey(nil)
	odd := f.newKey(nil)
	var all, evens []string
	for i := range 25 {
		k := odd
		if i%2 == 0 {
			k = even
		}
		id := f.reserve(k, usd("1"), t0.Add(time.Duration(i)*time.Second), ledger.OutcomeForwarded)
		all = append(all, id)
		if k.ID == even.ID {
			evens = append(evens, id)
		}
	}

	page := func(filter ledger.AuditFilter, sizes []int) []string {
		f.t.Helper()
		var got []string
		for i, size := range sizes {
			calls, next, err := f.s.Audit(f.ctx, filter)
			if err != nil {
				f.t.Fatalf("Audit page %d: %v", i, err)
			}
			last := i == len(sizes)-1
			if len(calls) != size || (next == "") != last {
				f.t.Fatalf("Audit page %d: %d calls, cursor %q; want %d calls, last=%v", i, len(calls), next, size, last)
			}
			got = append(got, callIDs(calls)...)
			filter.Cursor = next
		}
		return got
	}
	f.wantIDs("25 calls by 10, oldest first", page(ledger.AuditFilter{Limit: 10}, []int{10, 10, 5}), all)
	f.wantIDs("13 calls of one key by 4", page(ledger.AuditFilter{KeyID: even.ID, Limit: 4}, []int{4, 4, 4, 1}), evens)
	f.wantIDs("limit 0 means 100", page(ledger.AuditFilter{}, []int{25}), all)

	// A call recorded after a page was read shows up on a later page.
	calls, next, err := f.s.Audit(f.ctx, ledger.AuditFilter{Limit: 20})
	if err != nil || len(calls) != 20 || next == "" {
		f.t.Fatalf("Audit first page: %d calls, cursor %q, %v", len(calls), next, err)
	}
	late := f.reserve(even, usd("1"), t0.Add(time.Hour), ledger.OutcomeForwarded)
	rest, next, err := f.s.Audit(f.ctx, ledger.AuditFilter{Limit: 20, Cursor: next})
	if err != nil || next != "" {
		f.t.Fatalf("Audit second page: cursor %q, %v", next, err)
	}
	f.wantIDs("second page after a new call", callIDs(rest), append(append([]string{}, all[20:]...), late))
}

func testSummary(f *fixture) {
	t := f.t
	kS := f.newKey(func(k *ledger.Key) { k.RunLabel, k.TotalCap = "run/a", capOf("10") })
	kR := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/a" })
	kT := f.newKey(func(k *ledger.Key) { k.RunLabel, k.Vendor = "run/a", "twilio" })
	kB := f.newKey(func(k *ledger.Key) { k.RunLabel, k.TotalCap = "run/b", capOf("1000") })
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ok := func(id string, cost string) {
		f.settle(id, ledger.Settlement{StatusCode: 200, Cost: usd(cost), Now: at(100)})
	}
	customers := func(r *ledger.ReserveRequest) {
		r.Method, r.Path, r.Endpoint = "GET", "/v1/customers/cus_1", "GET /v1/customers/*"
	}
	twilioMsg := func(r *ledger.ReserveRequest) {
		r.Path, r.Endpoint = "/2010-04-01/Accounts/AC1/Messages.json", "POST /2010-04-01/Accounts/*/Messages.json"
	}

	// stripe, POST /v1/payment_intents
	p1 := f.request(kS, usd("1"), at(1), withIdem("idemP1", "fpP1"))
	f.reserveReq(p1, ledger.OutcomeForwarded)
	ok(p1.CallID, "1")
	ok(f.reserve(kS, usd("2"), at(2), ledger.OutcomeForwarded), "2")
	f.reserve(kS, usd("4"), at(3), ledger.OutcomeForwarded) // still open
	f.reserve(kS, usd("5"), at(4), ledger.OutcomeCapHit)
	f.reserveReq(f.request(kS, usd("1"), at(5), withIdem("idemP1", "fpP1")),
		ledger.OutcomeIdempotentReplay)
	f.markUnknown(f.reserve(kS, usd("1"), at(6), ledger.OutcomeForwarded), ledger.Settlement{StatusCode: 504, Now: at(7)})
	if _, err := f.s.RevokeKey(f.ctx, kR.ID, at(0)); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	f.reserve(kR, usd("1"), at(8), ledger.OutcomeRevoked)

	// stripe, GET /v1/customers/*
	g1 := f.request(kS, 0, at(9), customers)
	f.reserveReq(g1, ledger.OutcomeForwarded)
	ok(g1.CallID, "0")
	g2 := f.request(kS, 0, at(10), customers)
	f.reserveReq(g2, ledger.OutcomeForwarded)
	f.release(g2.CallID, ledger.Settlement{StatusCode: 404, Now: at(10)})

	// stripe, no endpoint matched
	if err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: "callDenied", KeyID: kS.ID, RunLabel: "run/a",
		Vendor: "stripe", Method: "GET", Path: "/v1/balance", StatusCode: 403,
		Outcome: ledger.OutcomeEndpointDenied, StartedAt: at(11)}); err != nil {
		t.Fatalf("RecordRefusal: %v", err)
	}

	// twilio messages
	tw1 := f.request(kT, usd("0.0158"), at(12), twilioMsg)
	f.reserveReq(tw1, ledger.OutcomeForwarded)
	f.settle(tw1.CallID, ledger.Settlement{StatusCode: 201, Cost: usd("0.0158"), CostState: ledger.CostUnpriced, Now: at(12)})
	tw2 := f.request(kT, usd("0.0158"), at(13), twilioMsg)
	f.reserveReq(tw2, ledger.OutcomeForwarded)
	ok(tw2.CallID, "0.0079")
	tw3 := f.request(kT, usd("0.0158"), at(14), twilioMsg)
	f.reserveReq(tw3, ledger.OutcomeForwarded)
	f.release(tw3.CallID, ledger.Settlement{StatusCode: 400, Now: at(14)})

	// another run, not summarised
	ok(f.reserve(kB, usd("50"), at(15), ledger.OutcomeForwarded), "50")

	got, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: "run/a"})
	if err != nil {
		t.Fatalf("Summary: %v", err)
	}
	const pis = "POST /v1/payment_intents"
	want := []ledger.SummaryRow{
		{Vendor: "stripe", Endpoint: "", Outcome: ledger.OutcomeEndpointDenied, Calls: 1, Refused: 1},
		{Vendor: "stripe", Endpoint: "GET /v1/customers/*", Outcome: ledger.OutcomeForwarded, Calls: 2, Forwarded: 2},
		{Vendor: "stripe", Endpoint: pis, Outcome: ledger.OutcomeCapHit, Calls: 1, CapHits: 1},
		{Vendor: "stripe", Endpoint: pis, Outcome: ledger.OutcomeForwarded, Calls: 4, Forwarded: 4,
			Spent: usd("3"), Reserved: usd("5")},
		{Vendor: "stripe", Endpoint: pis, Outcome: ledger.OutcomeIdempotentReplay, Calls: 1, Forwarded: 1, Replays: 1},
		{Vendor: "stripe", Endpoint: pis, Outcome: ledger.OutcomeRevoked, Calls: 1, Refused: 1},
		{Vendor: "twilio", Endpoint: "POST /2010-04-01/Accounts/*/Messages.json", Outcome: ledger.OutcomeForwarded,
			Calls: 3, Forwarded: 3, Spent: usd("0.0237")},
	}
	for i := range want {
		want[i].RunLabel = "run/a"
	}
	f.wantSummaryRows("run/a", got, want)

	none, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: "run/none"})
	if err != nil || len(none) != 0 {
		t.Fatalf("Summary(unknown run) = %+v, %v; want no rows", none, err)
	}
}

// testSummaryDay checks the day view: every run's calls that started in a
// time window, and nothing outside it.
func testSummaryDay(f *fixture) {
	t := f.t
	kA := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/a" })
	kB := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/b" })
	day := ledger.Day(t0)
	f.settle(f.reserve(kA, usd("1"), day.Add(-time.Microsecond), ledger.OutcomeForwarded), ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: day})
	f.settle(f.reserve(kA, usd("2"), day, ledger.OutcomeForwarded), ledger.Settlement{StatusCode: 200, Cost: usd("2"), Now: day})
	f.reserve(kB, usd("3"), day.Add(23*time.Hour), ledger.OutcomeForwarded)
	f.settle(f.reserve(kB, usd("4"), day.Add(24*time.Hour), ledger.OutcomeForwarded), ledger.Settlement{StatusCode: 200, Cost: usd("4"), Now: day})

	got, err := f.s.Summary(f.ctx, ledger.SummaryFilter{Day: day})
	if err != nil {
		t.Fatalf("Summary(day): %v", err)
	}
	row := func(run string, spent, reserved money.Micros) ledger.SummaryRow {
		return ledger.SummaryRow{RunLabel: run, Vendor: "stripe", Endpoint: "POST /v1/payment_intents",
			Outcome: ledger.OutcomeForwarded, Calls: 1, Forwarded: 1, Spent: spent, Reserved: reserved}
	}
	f.wantSummaryRows("day", got, []ledger.SummaryRow{row("run/a", usd("2"), 0), row("run/b", 0, usd("3"))})

	got, err = f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: "run/b", Day: day.Add(23 * time.Hour)})
	if err != nil {
		t.Fatalf("Summary(day, run): %v", err)
	}
	f.wantSummaryRows("day and run", got, []ledger.SummaryRow{row("run/b", 0, usd("3"))})
}

// testAuditVendorTxn finds the call, and so the run, behind a vendor
// transaction id without knowing the vendor.
func testAuditVendorTxn(f *fixture) {
	t := f.t
	kA := f.newKey(func(k *ledger.Key) { k.RunLabel = "run/a" })
	kT := f.newKey(func(k *ledger.Key) { k.RunLabel, k.Vendor = "run/t", "twilio" })
	pi := f.reserve(kA, usd("1"), t0, ledger.OutcomeForwarded)
	f.settle(pi, ledger.Settlement{StatusCode: 200, Cost: usd("1"), VendorTxnID: "pi_123", Now: t0})
	f.settle(f.reserve(kA, usd("1"), t0.Add(time.Second), ledger.OutcomeForwarded),
		ledger.Settlement{StatusCode: 200, Cost: usd("1"), VendorTxnID: "pi_456", Now: t0})
	sm := f.reserve(kT, usd("0.01"), t0.Add(2*time.Second), ledger.OutcomeForwarded)
	f.settle(sm, ledger.Settlement{StatusCode: 201, Cost: usd("0.01"), VendorTxnID: "SM123", Now: t0})

	for txn, want := range map[string]string{"pi_123": pi, "SM123": sm} {
		calls, next, err := f.s.Audit(f.ctx, ledger.AuditFilter{VendorTxnID: txn})
		if err != nil || next != "" {
			t.Fatalf("Audit(vendor_txn_id=%s): cursor %q, %v", txn, next, err)
		}
		f.wantIDs("vendor_txn_id="+txn, callIDs(calls), []string{want})
	}
	calls, _, err := f.s.Audit(f.ctx, ledger.AuditFilter{VendorTxnID: "pi_none"})
	if err != nil || len(calls) != 0 {
		t.Fatalf("Audit(unknown txn) = %d calls, %v; want none", len(calls), err)
	}
}

// wantSummaryRows compares Summary rows one by one.
func (f *fixture) wantSummaryRows(what string, got, want []ledger.SummaryRow) {
	f.t.Helper()
	if len(got) != len(want) {
		f.t.Fatalf("Summary(%s) has %d rows; want %d:\n got  %+v\n want %+v", what, len(got), len(want), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			f.t.Fatalf("Summary(%s) row %d:\n got  %+v\n want %+v", what, i, got[i], want[i])
		}
	}
}

func testPendingCalls(f *fixture) {
	t := f.t
	stripe := f.newKey(nil)
	twilio := f.newKey(func(k *ledger.Key) { k.Vendor = "twilio" })
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	unpriced := func(m int) string {
		id := f.reserve(twilio, usd("0.0158"), at(m), ledger.OutcomeForwarded)
		f.settle(id, ledger.Settlement{StatusCode: 201, Cost: usd("0.0158"), CostState: ledger.CostUnpriced, Now: at(m)})
		return id
	}

	s1 := f.reserve(stripe, usd("1"), at(1), ledger.OutcomeForwarded)
	s2 := f.reserve(stripe, usd("1"), at(2), ledger.OutcomeForwarded)
	f.settle(f.reserve(stripe, usd("1"), at(3), ledger.OutcomeForwarded), ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: at(3)})
	f.reserve(stripe, usd("1"), at(5), ledger.OutcomeForwarded)
	f.markUnknown(f.reserve(stripe, usd("1"), at(0), ledger.OutcomeForwarded), ledger.Settlement{Now: at(0)})
	tw1 := unpriced(1)
	tw2 := unpriced(2)
	f.settle(unpriced(3), ledger.Settlement{StatusCode: 201, Cost: usd("0.0079"), Now: at(4)})
	f.reserve(twilio, usd("0.0158"), at(1), ledger.OutcomeForwarded) // reserved, not unpriced

	pending := func(vendor, state string, before time.Time, limit int) []string {
		t.Helper()
		calls, err := f.s.PendingCalls(f.ctx, vendor, state, before, limit)
		if err != nil {
			t.Fatalf("PendingCalls(%s, %s): %v", vendor, state, err)
		}
		return callIDs(calls)
	}
	f.wantIDs("reserved stripe before 5", pending("stripe", ledger.CostReserved, at(5), 10), []string{s1, s2})
	f.wantIDs("limit 1", pending("stripe", ledger.CostReserved, at(5), 1), []string{s1})
	f.wantIDs("before is exclusive", pending("stripe", ledger.CostReserved, at(2), 10), []string{s1})
	f.wantIDs("unpriced twilio", pending("twilio", ledger.CostUnpriced, at(60), 10), []string{tw1, tw2})
	f.wantIDs("no unpriced stripe", pending("stripe", ledger.CostUnpriced, at(60), 10), []string{})

	f.settle(tw1, ledger.Settlement{StatusCode: 201, Cost: usd("0.0079"), Now: at(61)})
	f.wantIDs("unpriced twilio after pricing one", pending("twilio", ledger.CostUnpriced, at(60), 10), []string{tw2})
}
