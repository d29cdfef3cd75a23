package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// TestSQLiteRateRingMigration: a ledger at 0011 whose rate keys hold
// 0010's log of counted calls is migrated to the rings of 0012 and goes on
// deciding as the log said: a key that kept more than its N (a PATCH had
// narrowed it) keeps its newest N, one that kept fewer keeps them all, in
// either case the next slot is the N-th newest.
func TestSQLiteRateRingMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := ledger.LoadMigrations(sqliteMigrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%.60s…: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`)
	for _, m := range steps {
		if m.Version > 11 {
			break
		}
		if _, err := sqliteApplyMigration(ctx, db, m); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2031, time.May, 17, 9, 30, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	sec := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	for i, k := range []struct {
		id  string
		n   int
		log []int
	}{{"vkMany", 3, []int{-50, -40, -30, -20, -10}}, {"vkFew", 4, []int{-45, -5}}} {
		h := ledger.HashSecret(k.id + "-secret")
		exec(`INSERT INTO keys (id, hash, vendor, total_cap, allowed_endpoints, run_label, created_at, expires_at,
				rules, rate_calls, rate_window_us)
			VALUES (?, ?, 'stripe', 100000000, '["POST /v1/payment_intents"]', 'run/ring', ?, ?, ?, ?, 60000000)`,
			k.id, h[:], sqliteTime(t0), sqliteTime(t0.Add(24*time.Hour)), fmt.Sprintf(`{"rate":"%d/1m"}`, k.n), k.n)
		for j, s := range k.log {
			exec(`INSERT INTO key_rate_log (key_id, at, call_id) VALUES (?, ?, ?)`, k.id, sqliteTime(sec(s)), fmt.Sprintf("call%d%d", i, j))
		}
	}
	db.Close()

	st, err := openSQLite(ctx, "sqlite:"+path, zap.NewNop()) // applies 0012
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reserve := func(id string, at time.Time, wantOutcome string, wantRetry time.Duration) {
		t.Helper()
		res, err := st.Reserve(ctx, ledger.ReserveRequest{
			CallID: "cl" + id + at.Format("150405.000000"), KeyID: id, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: 1000, Now: at, MovesMoney: true,
		})
		if err != nil {
			t.Fatalf("Reserve(%s): %v", id, err)
		}
		if res.Outcome != wantOutcome || (wantOutcome == ledger.OutcomeRuleDenied && (res.Rule != rules.RuleRate || res.RetryAfter != wantRetry)) {
			t.Fatalf("%s at %s: %s %q retry %v; want %s retry %v", id, at.Sub(now), res.Outcome, res.Rule, res.RetryAfter, wantOutcome, wantRetry)
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
