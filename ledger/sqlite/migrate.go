package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// sqliteMigrations holds the schema as numbered files, NNNN_name.sql,
// applied in order. A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var sqliteMigrations embed.FS

// sqliteMigrate applies the migrations the file has not seen yet, each in its
// own BEGIN IMMEDIATE transaction together with its schema_migrations row,
// so a crash mid-way leaves the file at a clean version and two processes
// opening the same new file cannot both apply one.
func sqliteMigrate(ctx context.Context, db *sql.DB, logger *zap.Logger) error {
	migrations, err := ledger.LoadMigrations(sqliteMigrations, "migrations")
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL -- unix nanoseconds UTC
	) STRICT`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	done, err := sqliteAppliedVersions(ctx, db)
	if err != nil {
		return err
	}
	// Each pending step is checked again in its own transaction: another
	// process may apply it meanwhile.
	for _, m := range ledger.PendingMigrations("sqlite", migrations, done, logger) {
		applied, err := sqliteApplyMigration(ctx, db, m)
		if err != nil {
			return err
		}
		if applied {
			logger.Info("applied ledger migration",
				zap.String("backend", "sqlite"), zap.Int("version", m.Version), zap.String("file", m.Name))
		}
	}
	return nil
}

// sqliteApplyMigration applies m unless its version is already recorded,
// and reports whether it did.
func sqliteApplyMigration(ctx context.Context, db *sql.DB, m ledger.Migration) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("applying migration %s: %w", m.Name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return false, fmt.Errorf("checking migration %s: %w", m.Name, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("applying migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, time.Now().UTC().UnixNano()); err != nil {
		return false, fmt.Errorf("recording migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("committing migration %s: %w", m.Name, err)
	}
	return true, nil
}
