package ledgertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// RateLogKey is a rate key of a ledger from before the rate rings (Postgres
// 0014, SQLite 0010): its N (per minute) and the times, in seconds from
// RateLogNow, its log kept.
type RateLogKey struct {
	ID  string
	N   int
	Log []int
}

// RateLogNow is the time CheckRateRingMigration decides at; the logs are
// before it.
var RateLogNow = time.Date(2031, time.May, 17, 10, 30, 0, 0, time.UTC)

// RateLogKeys are the keys a backend's migration test writes, with their
// logs, into a ledger at the version before the rings: vkMany kept more
// than its N (a PATCH had narrowed it), vkFew fewer.
var RateLogKeys = []RateLogKey{
	{ID: "vkMany", N: 3, Log: []int{-50, -40, -30, -20, -10}},
	{ID: "vkFew", N: 4, Log: []int{-45, -5}},
}

// RateLogRules is the rules JSON of k, as the key row stores it.
func (k RateLogKey) RateLogRules() string { return fmt.Sprintf(`{"rate":"%d/1m"}`, k.N) }

// CheckRateRingMigration reserves on the RateLogKeys of s, a ledger migrated
// from their logs to rings, and checks that it decides as the logs say: a
// key that kept more than its N kept its newest N, one that kept fewer kept
// them all, and in either case the next slot is the N-th newest.
func CheckRateRingMigration(t *testing.T, s ledger.Store) {
	t.Helper()
	ctx := context.Background()
	sec := func(n int) time.Time { return RateLogNow.Add(time.Duration(n) * time.Second) }
	reserve := func(id string, at time.Time, wantOutcome string, wantRetry time.Duration) {
		t.Helper()
		res, err := s.Reserve(ctx, ledger.ReserveRequest{
			CallID: "cl" + id + at.Format("150405.000000"), KeyID: id, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: 1000, Now: at, MovesMoney: true,
		})
		if err != nil {
			t.Fatalf("Reserve(%s): %v", id, err)
		}
		if res.Outcome != wantOutcome || (wantOutcome == ledger.OutcomeRuleDenied && (res.Rule != rules.RuleRate || res.RetryAfter != wantRetry)) {
			t.Fatalf("%s at %s: %s %q retry %v; want %s retry %v",
				id, at.Sub(RateLogNow), res.Outcome, res.Rule, res.RetryAfter, wantOutcome, wantRetry)
		}
	}
	// vkMany: the 3rd newest (-30s) leaves the window at +30s.
	reserve("vkMany", sec(0), ledger.OutcomeRuleDenied, 30*time.Second)
	reserve("vkMany", sec(30), ledger.OutcomeForwarded, 0)
	reserve("vkMany", sec(31), ledger.OutcomeRuleDenied, 9*time.Second) // -20s leaves at +40s
	// vkFew: two kept, two more go ahead, then the -45s call decides.
	reserve("vkFew", sec(0), ledger.OutcomeForwarded, 0)
	reserve("vkFew", sec(1), ledger.OutcomeForwarded, 0)
	reserve("vkFew", sec(2), ledger.OutcomeRuleDenied, 13*time.Second)
	reserve("vkFew", sec(15), ledger.OutcomeForwarded, 0)
	reserve("vkFew", sec(16), ledger.OutcomeRuleDenied, 39*time.Second) // -5s leaves at +55s
}
