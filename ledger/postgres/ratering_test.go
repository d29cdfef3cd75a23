package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/ledger/ledgertest"
)

// TestPostgresRateRingMigration: a ledger at 0015 whose rate keys hold
// 0014's log of counted calls is migrated to the rings of 0016 and goes on
// deciding as the log said (ledgertest.CheckRateRingMigration).
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

	for _, k := range ledgertest.RateLogKeys {
		exec(`INSERT INTO vault_keys (id, hash, vendor, allowed_endpoints, run_label, created_at, expires_at, total_cap,
				rules, rate_calls, rate_window_us)
			VALUES ($1, $2, 'stripe', '{POST /v1/payment_intents}', 'run/ring', $3, $4, 100000000, $5, $6, 60000000)`,
			k.ID, hashBytes(ledger.HashSecret(k.ID+"-secret")), pgTestT0, pgTestT0.Add(24*time.Hour), k.RateLogRules(), k.N)
		for j, sec := range k.Log {
			exec(`INSERT INTO key_rate_log (key_id, at, call_id) VALUES ($1, $2, $3)`,
				k.ID, ledgertest.RateLogNow.Add(time.Duration(sec)*time.Second), fmt.Sprintf("call%s%d", k.ID, j))
		}
	}

	ledgertest.CheckRateRingMigration(t, pgTestOpen(t, dsn)) // applies 0016
}

func hashBytes(h ledger.Hash) []byte { return h[:] }
