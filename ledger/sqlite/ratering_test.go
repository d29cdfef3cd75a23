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
	"github.com/keybrake/keybrake/ledger/ledgertest"
)

// TestSQLiteRateRingMigration: a ledger at 0011 whose rate keys hold
// 0010's log of counted calls is migrated to the rings of 0012 and goes on
// deciding as the log said (ledgertest.CheckRateRingMigration).
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
	t0 := ledgertest.RateLogNow.Add(-time.Hour)
	for _, k := range ledgertest.RateLogKeys {
		h := ledger.HashSecret(k.ID + "-secret")
		exec(`INSERT INTO keys (id, hash, vendor, total_cap, allowed_endpoints, run_label, created_at, expires_at,
				rules, rate_calls, rate_window_us)
			VALUES (?, ?, 'stripe', 100000000, '["POST /v1/payment_intents"]', 'run/ring', ?, ?, ?, ?, 60000000)`,
			k.ID, h[:], sqliteTime(t0), sqliteTime(t0.Add(24*time.Hour)), k.RateLogRules(), k.N)
		for j, sec := range k.Log {
			exec(`INSERT INTO key_rate_log (key_id, at, call_id) VALUES (?, ?, ?)`,
				k.ID, sqliteTime(ledgertest.RateLogNow.Add(time.Duration(sec)*time.Second)), fmt.Sprintf("call%s%d", k.ID, j))
		}
	}
	db.Close()

	st, err := openSQLite(ctx, "sqlite:"+path, zap.NewNop()) // applies 0012
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ledgertest.CheckRateRingMigration(t, st)
}
