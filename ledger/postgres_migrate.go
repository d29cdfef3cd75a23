package ledger

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// postgresMigrations holds the schema as numbered steps NNNN_name.sql,
// applied in order, each exactly once.
//
//go:embed migrations/postgres/*.sql
var postgresMigrations embed.FS

// postgresMigrationLock is the pg_advisory_xact_lock key that serialises
// migrations, so that nodes starting together apply each step once.
// ("kbmigrat" in ASCII.)
const postgresMigrationLock int64 = 0x6b626d6967726174

type postgresMigration struct {
	version int
	name    string
	sql     string
}

// loadPostgresMigrations reads the embedded steps in version order.
func loadPostgresMigrations() ([]postgresMigration, error) {
	const dir = "migrations/postgres"
	entries, err := fs.ReadDir(postgresMigrations, dir)
	if err != nil {
		return nil, fmt.Errorf("reading postgres migrations: %w", err)
	}
	var steps []postgresMigration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("postgres migration %q is not named NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(postgresMigrations, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading postgres migration %s: %w", e.Name(), err)
		}
		steps = append(steps, postgresMigration{version: version, name: e.Name(), sql: string(body)})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].version < steps[j].version })
	for i := 1; i < len(steps); i++ {
		if steps[i].version == steps[i-1].version {
			return nil, fmt.Errorf("postgres migrations %s and %s share a version", steps[i-1].name, steps[i].name)
		}
	}
	return steps, nil
}

// migrate applies the pending steps in one transaction that first takes an
// advisory lock: a node that starts while another is migrating waits for it,
// then finds nothing left to do. Either every pending step is applied or
// none is. It returns the names of the steps applied.
func (s *postgresStore) migrate(ctx context.Context) ([]string, error) {
	steps, err := loadPostgresMigrations()
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
		done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("reading schema_migrations: %w", err)
		}
		have := make(map[int]bool, len(done))
		newest := 0
		for _, v := range done {
			have[int(v)] = true
			newest = max(newest, int(v))
		}
		if len(steps) > 0 && newest > steps[len(steps)-1].version {
			// A newer Keybrake migrated this database. Its steps only add,
			// so this one keeps working; say so in case it does not.
			s.logger.Warn("postgres ledger schema is newer than this build",
				zap.Int("schema_version", newest),
				zap.Int("build_version", steps[len(steps)-1].version))
		}
		for _, m := range steps {
			if have[m.version] {
				continue
			}
			// No arguments: pgx sends it with the simple protocol, which
			// takes a file of several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("applying postgres migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
				m.version, time.Now().UTC()); err != nil {
				return fmt.Errorf("recording postgres migration %s: %w", m.name, err)
			}
			applied = append(applied, m.name)
		}
		return nil
	})
	if err != nil {
		return nil, postgresErr("migrating postgres ledger", err)
	}
	return applied, nil
}
