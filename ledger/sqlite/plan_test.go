package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger/ledgertest"
	"github.com/keybrake/keybrake/ledger/sqlite"
)

// planSeedCalls is how many calls TestSQLitePlans seeds: enough for
// ANALYZE to give the planner a real table, few enough to seed in a blink.
const planSeedCalls = 20_000

// TestSQLitePlans checks, on a seeded and analysed ledger, that every audit
// filter, both summary views and retention's selection are an index range
// (EXPLAIN QUERY PLAN says SEARCH, on an index whose condition names the
// filtered column), never a scan of calls.
func TestSQLitePlans(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	openSQLiteForTest(t, path, nil) // migrates
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := ledgertest.PlanSeedDay.UnixNano()
	step := int64(10*24*time.Hour) / planSeedCalls
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO calls (call_id, key_id, run_label, vendor, method, path, endpoint, outcome,
			reserved, cost, vendor_txn_id, cost_state, day, started_at)
		SELECT 'call/' || i, 'key/' || (i % 500), 'run/' || (i % 200),
			CASE WHEN i % 10 = 0 THEN 'twilio' ELSE 'stripe' END, 'POST', '/v1/payment_intents', 'POST /v1/payment_intents',
			CASE i % 20 WHEN 0 THEN 'cap_hit' WHEN 1 THEN 'revoked' ELSE 'forwarded' END,
			100, 100, CASE WHEN i % 3 = 0 THEN 'pi_' || i ELSE '' END,
			CASE WHEN i % 20 < 2 THEN 'none' WHEN i % 50 = 2 THEN 'unknown' ELSE 'settled' END,
			(? + i * ?) / 86400000000000 * 86400000000000, ? + i * ?
		FROM n`, planSeedCalls, start, step, start, step); err != nil {
		t.Fatalf("seeding calls: %v", err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, pc := range ledgertest.PlanCases(sqlite.Dialect, sqlite.CallColumns) {
		plan := sqliteExplain(t, db, pc.SQL, pc.Args)
		t.Logf("%s: %s", pc.Name, strings.ReplaceAll(plan, "\n", " / "))
		if !sqlitePlanSearches(plan, pc.Table, pc.Columns) {
			t.Errorf("%s is not an index range of %s on %v:\n%s\n%s", pc.Name, pc.Table, pc.Columns, pc.SQL, plan)
		}
	}
}

func sqliteExplain(t *testing.T, db *sql.DB, q string, args []any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// sqlitePlanSearches tells whether plan reads table only by SEARCH on an
// index whose condition names one of columns ("SEARCH calls USING INDEX
// calls_by_outcome (outcome=? AND started_at>?)"), and never SCANs it.
func sqlitePlanSearches(plan, table string, columns []string) bool {
	found := false
	for _, line := range strings.Split(plan, "\n") {
		if strings.HasPrefix(line, "SCAN "+table) {
			return false
		}
		if !strings.HasPrefix(line, "SEARCH "+table+" ") {
			continue
		}
		_, cond, _ := strings.Cut(line, "(")
		for _, c := range columns {
			if strings.Contains(cond, c+"=") || strings.Contains(cond, c+">") || strings.Contains(cond, c+"<") {
				found = true
			}
		}
	}
	return found
}
