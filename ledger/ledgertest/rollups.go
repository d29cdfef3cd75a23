package ledgertest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// testRollupsMatchCalls writes a seeded mix of reservations (spend,
// zero-cost, replays, cap hits, refusals), settlements that change the
// outcome, releases and calls marked unknown, in batches and alone, over
// two runs and two days; then checks that Summary, which reads the daily
// rollups, counts exactly what the calls themselves say, by run and by
// day. A backend that keeps its rollups other than call by call (Postgres
// writes a batch's once, at its end) is held to the calls here.
func testRollupsMatchCalls(f *fixture) {
	rng := rand.New(rand.NewPCG(20, 26))
	keys := []ledger.Key{
		f.newKey(func(k *ledger.Key) { k.RunLabel, k.TotalCap = "run/roll-a", capOf("40") }),
		f.newKey(func(k *ledger.Key) { k.RunLabel, k.TotalCap = "run/roll-a", capOf("1000") }),
		f.newKey(func(k *ledger.Key) { k.RunLabel, k.TotalCap = "run/roll-b", capOf("25") }),
	}
	day := ledger.Day(t0)
	var open []string // calls reserved or unknown, to finish later
	idems := 0
	for round := 0; round < 30; round++ {
		now := day.Add(time.Duration(round) * 90 * time.Minute) // rounds 16 on fall on the next day
		var ops []ledger.Op
		for n := 1 + rng.IntN(12); n > 0; n-- {
			k := keys[rng.IntN(len(keys))]
			switch rng.IntN(4) {
			case 0: // zero-cost
				ops = append(ops, reserveOp(f.request(k, 0, now, func(r *ledger.ReserveRequest) {
					r.Method, r.Path, r.Endpoint = "GET", "/v1/customers/cus_1", "GET /v1/customers/*"
				})))
			case 1: // with an idempotency key, sometimes one already used
				if rng.IntN(2) == 0 || idems == 0 {
					idems++
				}
				id := fmt.Sprintf("idem-roll-%d", idems)
				ops = append(ops, reserveOp(f.request(k, money.Micros(1+rng.IntN(3))*usd("1"), now, withIdem(id, id))))
			default:
				ops = append(ops, reserveOp(f.request(k, money.Micros(1+rng.IntN(5))*usd("1"), now, nil)))
			}
		}
		for i := 0; i < len(open) && i < 8; i++ {
			st := ledger.Settlement{StatusCode: 200, Cost: money.Micros(rng.IntN(4)) * usd("0.5"), Now: now}
			mode := ledger.FinishSettle
			switch rng.IntN(5) {
			case 0:
				mode, st.StatusCode, st.Cost = ledger.FinishRelease, 402, 0
			case 1:
				mode, st.StatusCode = ledger.FinishUnknown, 504
			case 2:
				st.Outcome = ledger.OutcomeUpstreamError // the outcome, and so the rollup row, changes
			}
			ops = append(ops, finishOp(open[i], mode, st))
		}
		open = open[min(8, len(open)):]
		var res []ledger.ReserveResult
		var errs []error
		if round%5 == 4 {
			// One at a time, as an idle node writes.
			for _, op := range ops {
				r, err := f.writeBatch([]ledger.Op{op})
				res, errs = append(res, r...), append(errs, err...)
			}
		} else {
			res, errs = f.writeBatch(ops)
		}
		for i, op := range ops {
			if errs[i] != nil {
				f.t.Fatalf("round %d op %d: %v", round, i, errs[i])
			}
			if op.Reserve != nil && res[i].Outcome == ledger.OutcomeForwarded {
				open = append(open, op.Reserve.CallID)
			}
		}
	}

	for _, filter := range []ledger.SummaryFilter{
		{RunLabel: "run/roll-a"}, {RunLabel: "run/roll-b"}, {Day: day}, {Day: day.Add(24 * time.Hour)},
		{RunLabel: "run/roll-b", Day: day.Add(24 * time.Hour)},
	} {
		got, err := f.s.Summary(f.ctx, filter)
		if err != nil {
			f.t.Fatalf("Summary(%+v): %v", filter, err)
		}
		audit := ledger.AuditFilter{RunLabel: filter.RunLabel}
		want := map[ledger.SummaryRow]ledger.SummaryRow{}
		for _, c := range f.auditAll(audit) {
			if !filter.Day.IsZero() && !ledger.Day(c.StartedAt).Equal(filter.Day) {
				continue
			}
			if c.RunLabel != "run/roll-a" && c.RunLabel != "run/roll-b" {
				continue
			}
			id := ledger.SummaryRow{RunLabel: c.RunLabel, Vendor: c.Vendor, Endpoint: c.Endpoint, Outcome: c.Outcome, Rule: c.Rule}
			row := want[id]
			row.Calls += c.Count
			if c.CostState != ledger.CostNone || c.ReplayOf != "" {
				row.Forwarded += c.Count
			}
			if c.ReplayOf != "" {
				row.Replays += c.Count
			}
			capHit := c.Outcome == ledger.OutcomeCapHit || c.Outcome == ledger.OutcomeBudgetHit
			if capHit {
				row.CapHits += c.Count
			}
			if c.CostState == ledger.CostNone && c.ReplayOf == "" && !capHit {
				row.Refused += c.Count
			}
			row.Spent += c.Cost
			if c.CostState == ledger.CostReserved || c.CostState == ledger.CostUnknown {
				row.Reserved += c.Reserved
			}
			want[id] = row
		}
		gotRows := map[ledger.SummaryRow]ledger.SummaryRow{}
		for _, r := range got {
			if r.RunLabel != "run/roll-a" && r.RunLabel != "run/roll-b" {
				continue
			}
			id := ledger.SummaryRow{RunLabel: r.RunLabel, Vendor: r.Vendor, Endpoint: r.Endpoint, Outcome: r.Outcome, Rule: r.Rule}
			gotRows[id] = r
		}
		for id, w := range want {
			w.RunLabel, w.Vendor, w.Endpoint, w.Outcome, w.Rule = id.RunLabel, id.Vendor, id.Endpoint, id.Outcome, id.Rule
			if gotRows[id] != w {
				f.t.Errorf("Summary(%+v) row %s %s %s:\n got  %+v\n want %+v (from the calls)", filter, id.RunLabel, id.Endpoint, id.Outcome, gotRows[id], w)
			}
			delete(gotRows, id)
		}
		for _, r := range gotRows {
			if r.Calls != 0 {
				f.t.Errorf("Summary(%+v) has a row no call makes: %+v", filter, r)
			}
		}
	}
}
