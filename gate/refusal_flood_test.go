package gate

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// TestGateRevokedKeyFlood: a revoked key sending 10,000 calls, a few a
// millisecond, adds one refusal record per minute to the ledger, each
// counting its calls, instead of a row per call; the summary still counts
// them all.
func TestGateRevokedKeyFlood(t *testing.T) {
	f := newGTFixture(t, "100")
	if _, err := f.store.RevokeKey(context.Background(), f.key.ID, f.now); err != nil {
		t.Fatal(err)
	}
	const flood = 10_000
	start := f.now
	for i := range flood {
		f.now = start.Add(time.Duration(i) * 10 * time.Millisecond) // 100 s: two minutes
		if w := f.charge(answer(200, `{}`), ""); w.Code != http.StatusUnauthorized {
			t.Fatalf("call %d of a revoked key: %d %s", i, w.Code, w.Body)
		}
	}
	calls, _, err := f.store.Audit(context.Background(), ledger.AuditFilter{KeyID: f.key.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var counted int64
	for _, c := range calls {
		counted += c.Count
	}
	if len(calls) > 2 || counted != flood {
		t.Fatalf("%d calls of a revoked key left %d records counting %d", flood, len(calls), counted)
	}
	rows, err := f.store.Summary(context.Background(), ledger.SummaryFilter{RunLabel: f.key.RunLabel})
	if err != nil || len(rows) != 1 || rows[0].Refused != flood || rows[0].Outcome != ledger.OutcomeRevoked {
		t.Fatalf("summary %+v, %v; want %d revoked refusals", rows, err, flood)
	}
}
