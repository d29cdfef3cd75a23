package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// TestPostgresRateRingMigration: a ledger at 0015 whose rate keys hold
// 0014's log of counted calls is migrated to the rings of 0016 and goes on
// deciding as the log said: a key that kept more than its N keeps its
// newest N, one that kept fewer keeps them all, in either case the next
// slot is the N-th newest.
func TestPostgresRateRingMigration(t *testing.T) {
	ctx := context.Background()
	dsn := pgTestDatabase(t)
	steps, err := ledger.LoadMigrations(os.DirFS("."), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%.60s…: %v", sql, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)`)
	for _, m := range steps {
		if m.Version > 15 {
			break
		}
		exec(m.SQL)
		exec(`INSERT INTO schema_migrations VALUES ($1, now())`, m.Version)
	}

	now := pgTestT0.Add(time.Hour)
	sec := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	// vkMany: rate 3/1m with five calls kept (a PATCH had narrowed it);
	// vkFew: rate 4/1m with two kept.
	for i, k := range []struct {
		id  string
		n   int
		log []int
	}{{"vkMany", 3, []int{-50, -40, -30, -20, -10}}, {"vkFew", 4, []int{-45, -5}}} {
		exec(`INSERT INTO vault_keys (id, hash, vendor, allowed_endpoints, run_label, created_at, expires_at, total_cap,
				rules, rate_calls, rate_window_us)
			VALUES ($1, $2, 'stripe', '{POST /v1/payment_intents}', 'run/ring', $3, $4, 100000000, $5, $6, 60000000)`,
			k.id, hashBytes(ledger.HashSecret(k.id+"-secret")), pgTestT0, pgTestT0.Add(24*time.Hour),
			fmt.Sprintf(`{"rate":"%d/1m"}`, k.n), k.n)
		for j, s := range k.log {
			exec(`INSERT INTO key_rate_log (key_id, at, call_id) VALUES ($1, $2, $3)`, k.id, sec(s), fmt.Sprintf("call%d%d", i, j))
		}
	}

	s := pgTestOpen(t, dsn) // applies 0016
	reserve := func(id string, at time.Time, wantOutcome string, wantRetry time.Duration) {
		t.Helper()
		k, err := s.GetKey(ctx, id, at)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Reserve(ctx, ledger.ReserveRequest{
			CallID: "cl" + id + at.Format("150405.000000"), KeyID: id, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: 1000, Now: at, MovesMoney: true,
		})
		if err != nil {
			t.Fatalf("Reserve(%s): %v", id, err)
		}
		if res.Outcome != wantOutcome || (wantOutcome == ledger.OutcomeRuleDenied && (res.Rule != rules.RuleRate || res.RetryAfter != wantRetry)) {
			t.Fatalf("%s (rules %v) at %s: %s %q retry %v; want %s retry %v",
				id, k.Rules, at.Sub(now), res.Outcome, res.Rule, res.RetryAfter, wantOutcome, wantRetry)
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

func hashBytes(h ledger.Hash) []byte { return h[:] }
