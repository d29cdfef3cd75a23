package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/ledger/ledgertest"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
	"github.com/keybrake/keybrake/money"
)

func openSQLiteForTest(t *testing.T, path string, logger *zap.Logger) ledger.Store {
	t.Helper()
	s, err := ledger.Open(context.Background(), "sqlite:"+path, logger)
	if err != nil {
		t.Fatalf("Open(sqlite:%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSQLiteContract(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		return openSQLiteForTest(t, filepath.Join(t.TempDir(), "ledger.db"), nil)
	})
}

// TestSQLiteReopen opens the same file twice: the second open must apply no
// migration and see what the first one wrote.
func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "ledger.db") // parent dirs are created

	core, logs := observer.New(zap.InfoLevel)
	first, err := ledger.Open(ctx, "sqlite:"+path, zap.New(core))
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	applied := logs.FilterMessage("applied ledger migration").Len()
	if applied == 0 {
		t.Fatal("first Open logged no applied migration")
	}
	limit := money.Micros(5_000_000)
	now := time.Date(2031, 5, 17, 9, 30, 0, 0, time.UTC)
	key := ledger.Key{
		ID: "vkReopen", Hash: ledger.HashSecret("reopen secret"), Vendor: "stripe", TotalCap: &limit,
		AllowedEndpoints: []string{"POST /v1/payment_intents"}, RunLabel: "run/reopen",
		CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	if err := first.CreateKey(ctx, key); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if _, err := first.Reserve(ctx, ledger.ReserveRequest{CallID: "callReopen", KeyID: key.ID, Vendor: "stripe",
		Endpoint: "POST /v1/payment_intents", Estimate: 2_000_000, Now: now}); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	versionsBefore := migrationRows(t, path)
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	core2, logs2 := observer.New(zap.InfoLevel)
	second := openSQLiteForTest(t, path, zap.New(core2))
	if n := logs2.FilterMessage("applied ledger migration").Len(); n != 0 {
		t.Fatalf("second Open applied %d migrations; want 0", n)
	}
	if after := migrationRows(t, path); len(after) != len(versionsBefore) || len(after) != applied {
		t.Fatalf("schema_migrations = %v after reopen; before %v, %d applied", after, versionsBefore, applied)
	} else {
		for v, at := range versionsBefore {
			if after[v] != at {
				t.Fatalf("migration %d re-recorded: applied_at %d -> %d", v, at, after[v])
			}
		}
	}
	ku, err := second.GetKey(ctx, key.ID, now)
	if err != nil {
		t.Fatalf("GetKey after reopen: %v", err)
	}
	if ku.Reserved != 2_000_000 || ku.Calls != 1 || ku.RunLabel != "run/reopen" {
		t.Fatalf("after reopen: reserved %s, calls %d, run %q", ku.Reserved, ku.Calls, ku.RunLabel)
	}
}

// migrationRows reads schema_migrations straight from the file.
func migrationRows(t *testing.T, path string) map[int64]int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatalf("scanning schema_migrations: %v", err)
		}
		out[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	return out
}

// TestSQLiteUnavailable: a ledger that cannot be opened, or is used after
// Close, reports ErrUnavailable so the gate fails closed.
func TestSQLiteUnavailable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(ctx, "sqlite:"+filepath.Join(notADir, "ledger.db"), nil); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("Open under a file: err = %v; want ErrUnavailable", err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte("this is not an sqlite database, just some text padding it out............"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Open(ctx, "sqlite:"+garbage, nil); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("Open of a non-database: err = %v; want ErrUnavailable", err)
	}

	s, err := ledger.Open(ctx, "sqlite:"+filepath.Join(dir, "ledger.db"), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("Ping after Close: err = %v; want ErrUnavailable", err)
	}
	if _, err := s.Reserve(ctx, ledger.ReserveRequest{CallID: "c", KeyID: "k", Now: time.Now()}); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("Reserve after Close: err = %v; want ErrUnavailable", err)
	}
}
