// Package sqlite is the embedded ledger backend: one SQLite file serving
// one node. Importing it registers it with ledger.Open for sqlite:PATH DSNs.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/keybrake/keybrake/ledger"
)

func init() {
	ledger.RegisterBackend(ledger.Backend{Name: "sqlite", Prefixes: []string{"sqlite:"}, Open: openSQLite})
}

// sqliteBusyTimeoutMS is how long a statement waits for another process's
// write lock before failing with SQLITE_BUSY (reported as ErrUnavailable).
const sqliteBusyTimeoutMS = 5000

// sqliteStore is the embedded ledger: one SQLite file serving one node.
//
// Writes go through a pool of exactly one connection and every write
// transaction starts with BEGIN IMMEDIATE. Within this process the single
// connection serialises Reserve calls, so the cap check and the reservation
// can never interleave; BEGIN IMMEDIATE extends the same guarantee to another
// process that opens the same file. Reads use their own pool: in WAL mode
// they run beside the writer and see every committed transaction.
type sqliteStore struct {
	write *sql.DB
	stmts *sqliteStmts
	// Coalescer is the group commit of Reserve and the finishes; it gives
	// the store the Batcher methods.
	*ledger.Coalescer
	read   *sql.DB
	logger *zap.Logger
	closed atomic.Bool
	// decided wakes this process's approval watchers (approvals.go).
	decided ledger.ApprovalBroadcast
}

var _ ledger.Store = (*sqliteStore)(nil)

// openSQLite opens (creating if needed) the ledger file named by a
// sqlite:PATH DSN and applies pending migrations.
func openSQLite(ctx context.Context, dsn string, logger *zap.Logger) (ledger.Store, error) {
	path := strings.TrimPrefix(dsn, "sqlite:")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("opening sqlite ledger: want sqlite:PATH to a file, got %q", dsn)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite ledger %q: %w: %v", path, ledger.ErrUnavailable, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("opening sqlite ledger %q: %w: %v", path, ledger.ErrUnavailable, err)
	}

	s := &sqliteStore{logger: logger, stmts: newSQLiteStmts()}
	s.Coalescer = ledger.NewCoalescer(s.runBatch, 0)
	s.write, err = sql.Open("sqlite", sqliteDSN(abs, false))
	if err != nil {
		return nil, fmt.Errorf("opening sqlite ledger %q: %w: %v", path, ledger.ErrUnavailable, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)
	// Ping opens the file and switches it to WAL before any reader exists.
	if err := s.write.PingContext(ctx); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("opening sqlite ledger %q: %w", path, s.mapErr(err))
	}
	if err := sqliteMigrate(ctx, s.write, logger); err != nil {
		s.write.Close()
		return nil, fmt.Errorf("migrating sqlite ledger %q: %w", path, s.mapErr(err))
	}

	s.read, err = sql.Open("sqlite", sqliteDSN(abs, true))
	if err != nil {
		s.write.Close()
		return nil, fmt.Errorf("opening sqlite ledger %q: %w: %v", path, ledger.ErrUnavailable, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(readers)
	s.read.SetMaxIdleConns(readers)
	if err := s.read.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("opening sqlite ledger %q: %w", path, s.mapErr(err))
	}
	logger.Debug("sqlite ledger open", zap.String("path", abs))
	return s, nil
}

// sqliteDSN builds the driver DSN for a file. The path goes in a file: URI,
// escaped, so that a '?' or '#' in it cannot be read as parameters.
//
// synchronous=FULL makes each commit durable before Reserve returns: the
// reservation must survive a power cut that happens after the vendor was
// called. Read connections are query_only so a bug cannot write around the
// single writer.
//
// temp_store=MEMORY keeps the statement and savepoint journals in memory:
// every op of a batch runs in a savepoint of its own (batch.go), and with
// the default the first change to each page in each savepoint was written
// to a temporary file, a pwrite per page per op (about a fifth of the
// spend path's CPU, BENCHMARKS.md run 9). A batch's journals are a few
// pages; the durable WAL is untouched.
func sqliteDSN(absPath string, readOnly bool) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(absPath)}
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(sqliteBusyTimeoutMS))
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	q.Set("_pragma", "temp_store(memory)")
	if readOnly {
		q.Set("_query_only", "1")
	}
	return u.String() + "?" + q.Encode()
}

func (s *sqliteStore) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("pinging sqlite ledger: %w", s.mapErr(err))
	}
	return nil
}

func (s *sqliteStore) Close() error {
	if s.closed.Load() {
		return nil
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), sqliteCloseDrain)
	_ = s.Coalescer.Close(drainCtx)
	cancel()
	if s.closed.Swap(true) {
		return nil
	}
	var rerr error
	if s.read != nil {
		rerr = s.read.Close()
	}
	s.stmts.close()
	werr := s.write.Close()
	if werr != nil {
		return fmt.Errorf("closing sqlite ledger: %w", werr)
	}
	if rerr != nil {
		return fmt.Errorf("closing sqlite ledger: %w", rerr)
	}
	return nil
}

// inWriteTx runs fn in one write transaction (BEGIN IMMEDIATE) and commits
// it, or rolls it back if fn fails.
func (s *sqliteStore) inWriteTx(ctx context.Context, fn func(tx *sqliteTx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return s.mapErr(err)
	}
	defer s.stmts.prepareWanted(ctx, s.write)
	if err := fn(&sqliteTx{tx: tx, stmts: s.stmts}); err != nil {
		_ = tx.Rollback()
		return s.mapErr(err)
	}
	if err := tx.Commit(); err != nil {
		return s.mapErr(err)
	}
	return nil
}
