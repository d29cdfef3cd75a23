package postgres_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger/ledgertest"
	"github.com/keybrake/keybrake/ledger/postgres"
)

// pgPlanSeedCalls is how many calls TestPostgresPlans seeds.
const pgPlanSeedCalls = 20_000

// TestPostgresPlans checks, on a seeded and analysed ledger, that every
// audit filter, both summary views and retention's selection read through
// an index whose condition names the filtered column (an index scan in the
// audit order, or a bitmap scan of the few rows it matches), never by a
// sequential scan.
func TestPostgresPlans(t *testing.T) {
	ctx := context.Background()
	dsn := pgTestDatabase(t)
	pgTestOpen(t, dsn) // migrates
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	step := 10 * 24 * time.Hour / pgPlanSeedCalls
	if _, err := conn.Exec(ctx, `INSERT INTO calls (call_id, key_id, run_label, vendor, method, path, endpoint, outcome,
			reserved, cost, vendor_txn_id, cost_state, day, started_at)
		SELECT 'call/' || i, 'key/' || (i % 500), 'run/' || (i % 200),
			CASE WHEN i % 10 = 0 THEN 'twilio' ELSE 'stripe' END, 'POST', '/v1/payment_intents', 'POST /v1/payment_intents',
			CASE i % 20 WHEN 0 THEN 'cap_hit' WHEN 1 THEN 'revoked' ELSE 'forwarded' END,
			100, 100, CASE WHEN i % 3 = 0 THEN 'pi_' || i ELSE '' END,
			CASE WHEN i % 20 < 2 THEN 'none' WHEN i % 50 = 2 THEN 'unknown' ELSE 'settled' END,
			(($1::timestamptz + i * $2::interval) AT TIME ZONE 'UTC')::date, $1::timestamptz + i * $2::interval
		FROM generate_series(0, $3::int - 1) AS i`, ledgertest.PlanSeedDay, step, pgPlanSeedCalls); err != nil {
		t.Fatalf("seeding calls: %v", err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, pc := range ledgertest.PlanCases(postgres.Dialect, postgres.CallColumns) {
		plan := pgExplain(t, conn, pc.SQL, pc.Args)
		if msg := pgPlanProblem(plan, pc.Table, pc.Columns); msg != "" {
			t.Errorf("%s: %s:\n%s\n%s", pc.Name, msg, pc.SQL, plan)
		}
	}
}

func pgExplain(t *testing.T, conn *pgx.Conn, q string, args []any) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "EXPLAIN "+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", q, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", q, err)
	}
	return strings.Join(lines, "\n")
}

var pgIndexCond = regexp.MustCompile(`(Index Cond|Recheck Cond): (.*)`)

// pgPlanProblem says what is wrong with plan: a sequential scan of table,
// or no index condition naming one of columns; "" when nothing is.
func pgPlanProblem(plan, table string, columns []string) string {
	if strings.Contains(plan, "Seq Scan on "+table) {
		return "sequential scan of " + table
	}
	for _, m := range pgIndexCond.FindAllStringSubmatch(plan, -1) {
		for _, c := range columns {
			if strings.Contains(m[2], c+" ") || strings.Contains(m[2], c+")") || strings.Contains(m[2], c+",") {
				return ""
			}
		}
	}
	return "no index condition on " + strings.Join(columns, " or ")
}

// TestPostgresWriteFunctionsPlanWithIndexes: the write functions carry
// SET enable_seqscan = off. Migration 0010 set it on keybrake_batch, and
// 0014's DROP and CREATE of the function lost it without a test noticing
// (a batch then scanned calls until an autoanalyze, BENCHMARKS.md run 9);
// a later migration that recreates one of them must set it again. The
// tags' UPDATE, sent as a statement of its own until 0017, scanned calls
// the same way (keybrake_tag_calls since).
func TestPostgresWriteFunctionsPlanWithIndexes(t *testing.T) {
	ctx := context.Background()
	dsn := pgTestDatabase(t)
	pgTestOpen(t, dsn) // migrates
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, fn := range []string{"keybrake_batch", "keybrake_reserve", "keybrake_finish", "keybrake_tag_calls"} {
		// Every version of it: 0017 left 0016's keybrake_batch beside its
		// own for nodes not yet upgraded, and either may run.
		rows, err := conn.Query(ctx, `SELECT p.oid::regprocedure::text, coalesce(p.proconfig, '{}') FROM pg_proc p
			WHERE p.proname = $1 AND p.pronamespace = current_schema()::regnamespace`, fn)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		versions := 0
		for rows.Next() {
			var (
				sig     string
				configs []string
			)
			if err := rows.Scan(&sig, &configs); err != nil {
				t.Fatalf("%s: %v", fn, err)
			}
			versions++
			if !slices.Contains(configs, "enable_seqscan=off") {
				t.Errorf("%s runs with settings %q; want enable_seqscan=off", sig, configs)
			}
		}
		if err := rows.Err(); err != nil || versions == 0 {
			t.Fatalf("%s: %d versions, %v", fn, versions, err)
		}
	}
}
