package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
)

// postgresMigrations holds the schema as numbered steps NNNN_name.sql,
// applied in order, each exactly once.
//
//go:embed migrations/*.sql
var postgresMigrations embed.FS

// postgresMigrationLock is the pg_advisory_xact_lock key that serialises
// migrations, so that nodes starting together apply each step once.
// ("kbmigrat" in ASCII.)
const postgresMigrationLock int64 = 0x6b626d6967726174

// migrate applies the pending steps in one transaction that first takes an
// advisory lock: a node that starts while another is migrating waits for it,
// then finds nothing left to do. Either every pending step is applied or
// none is. It returns the names of the steps applied.
func (s *postgresStore) migrate(ctx context.Context) ([]string, error) {
	steps, err := ledger.LoadMigrations(postgresMigrations, "migrations")
	if err != nil {
		return nil, err
	}
	var applied []string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", postgresMigrationLock); err != nil {
			return fmt.Errorf("locking postgres migrations: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL
		)`); err != nil {
			return fmt.Errorf("creating schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
		if err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		done, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		for _, m := range ledger.PendingMigrations("postgres", steps, done, s.logger) {
			// No arguments: pgx sends it with the simple protocol, which
			// takes a file of several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("applying postgres migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
				m.Version, time.Now().UTC()); err != nil {
				return fmt.Errorf("recording postgres migration %s: %w", m.Name, err)
			}
			applied = append(applied, m.Name)
		}
		return nil
	})
	if err != nil {
		return nil, postgresErr("migrating postgres ledger", err)
	}
	return applied, nil
}
