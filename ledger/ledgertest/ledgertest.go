// Package ledgertest is the contract test suite every ledger.Store backend
// must pass. It knows nothing of any backend: a backend's own test calls Run
// with a constructor for fresh, empty stores.
//
// The suite passes explicit times to every Store method and never sleeps.
// Times are whole microseconds, so a backend that stores microseconds (such
// as Postgres timestamptz) passes as well as one that stores nanoseconds.
package ledgertest

import (
	"context"
	"testing"

	"github.com/keybrake/keybrake/ledger"
)

// Run runs the contract as subtests. newStore must return a new, empty store
// for each call and release it with t.Cleanup; subtests run one after the
// other, so a backend may reuse one database it empties in newStore.
func Run(t *testing.T, newStore func(t *testing.T) ledger.Store) {
	tests := []struct {
		name string
		run  func(f *fixture)
	}{
		{"Keys/CreateAndGet", testCreateAndGet},
		{"Keys/Conflict", testCreateKeyConflict},
		{"Keys/Revoke", testRevokeKey},
		{"Keys/ListFilters", testListKeysFilters},
		{"Keys/ListPaging", testListKeysPaging},

		{"Reserve/UnknownKey", testReserveUnknownKey},
		{"Reserve/RefusalOrder", testReserveRefusalOrder},
		{"Reserve/IdempotentReplay", testIdempotentReplay},
		{"Reserve/IdempotencyMismatch", testIdempotencyMismatch},
		{"Reserve/IdempotencyWindow", testIdempotencyWindow},
		{"Reserve/Minimum", testReserveMinimum},
		{"Reserve/ObjectExposure", testObjectExposure},
		{"Reserve/RefusalsAreRecorded", testRefusalsAreRecorded},
		{"Reserve/Remaining", testReserveRemaining},
		{"Reserve/Tag", testReserveTag},

		{"Caps/LifetimeExact", testLifetimeCapExact},
		{"Caps/DailyRollover", testDailyCapRollover},
		{"Caps/Both", testBothCaps},

		{"Settle/Counters", testSettleCounters},
		{"Settle/Unpriced", testSettleUnpriced},
		{"Settle/VendorFields", testSettleVendorFields},
		{"Settle/NotFoundAndRefused", testSettleNotFoundAndRefused},

		{"Resolve/SettleAndRelease", testResolveSettleAndRelease},
		{"Resolve/OnlyUnresolved", testResolveOnlyUnresolved},

		{"Calls/RecordRefusal", testRecordRefusal},
		{"Calls/AuditFilters", testAuditFilters},
		{"Calls/AuditPaging", testAuditPaging},
		{"Calls/Summary", testSummary},
		{"Calls/SummaryDay", testSummaryDay},
		{"Calls/AuditVendorTxn", testAuditVendorTxn},
		{"Calls/PendingCalls", testPendingCalls},
		{"Calls/RefusalFlood", testRefusalFlood},
		{"Calls/ReserveRefusalFlood", testReserveRefusalFlood},
		{"Calls/RefusalBucketShared", testRefusalBucketShared},
		{"Calls/Retention", testRetention},
		{"Paging/InvalidRequests", testInvalidPageRequests},

		{"Concurrent/LifetimeCap", testConcurrentLifetimeCap},
		{"Concurrent/DailyCap", testConcurrentDailyCap},

		{"Tokens/CreateGetRevoke", testTokens},
		{"Tokens/RevokeKeys", testRevokeKeys},
		{"Keys/Patch", testPatchKey},
		{"Budget/Total", testBudgetTotal},
		{"Budget/Daily", testBudgetDaily},
		{"Budget/Minimum", testBudgetMinimum},
		{"Concurrent/TokenBudget", testConcurrentTokenBudget},
		{"Outbox/Dedupe", testOutboxDedupe},
		{"Outbox/ClaimLease", testOutboxClaimLease},
		{"Outbox/Failed", testOutboxFailed},
		{"Outbox/ConcurrentClaims", testOutboxConcurrentClaims},

		{"Batch/MixedKeys", testBatchMixedKeys},
		{"Batch/HotKey", testBatchHotKey},
		{"Batch/BadOp", testBatchBadOp},
		{"Batch/FinishesFirst", testBatchFinishesFirst},
		{"Batch/Queued", testBatchQueued},
		{"Batch/RollupsMatchCalls", testRollupsMatchCalls},

		{"Rules/StoredAndPatched", testRulesStored},
		{"Rules/MaxCalls", testRuleMaxCalls},
		{"Rules/Rate", testRuleRate},
		{"Rules/RateModel", testRuleRateModel},
		{"Rules/OncePer", testRuleOncePer},
		{"Rules/OncePerObject", testRuleOncePerObject},
		{"Rules/Summary", testRuleSummary},
		{"Concurrent/Rules", testConcurrentRules},

		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(newFixture(t, newStore(t)))
		})
	}
	for _, tc := range approvalTests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, newStore(t))
			tc.run(f, f.approvals())
		})
	}
}

func testPing(f *fixture) {
	if err := f.s.Ping(f.ctx); err != nil {
		f.t.Fatalf("Ping: %v", err)
	}
}

// testContext is the context of the suite's calls. It is not t.Context so that a
// backend's cleanup, which runs after t.Context is cancelled, is not affected.
func testContext() context.Context { return context.Background() }
