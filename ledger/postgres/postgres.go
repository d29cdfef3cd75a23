// Package postgres is the ledger backend for a fleet of nodes sharing one
// PostgreSQL. Importing it registers it with ledger.Open for postgres://…
// and postgresql://… DSNs.
package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

func init() {
	ledger.RegisterBackend(ledger.Backend{
		Name:     "postgres",
		Prefixes: []string{"postgres://", "postgresql://"},
		Open:     openPostgres,
	})
}

// Defaults applied when the DSN does not say otherwise.
const (
	// postgresMaxConns bounds the pool: every in-flight spend call holds a
	// connection for one round trip, so a few dozen go a long way.
	postgresMaxConns = 32
	// postgresConnectTimeout keeps a dead server from holding a request for
	// long before the gate fails closed.
	postgresConnectTimeout = 5 * time.Second
)

// postgresStore is the ledger for a fleet of nodes sharing one PostgreSQL.
// Everything that must be atomic across nodes happens in one SQL function
// call (see migrations/0002_reserve.sql); the Go side only maps
// arguments, rows and errors.
type postgresStore struct {
	pool   *pgxpool.Pool
	logger *zap.Logger

	// listenConfig is what WatchKeys dials: its LISTEN connection is kept out
	// of the pool so it never starves the gate.
	listenConfig *pgx.ConnConfig
	// watchPing is how long WatchKeys waits for a notification before it
	// checks that its connection is still alive.
	watchPing time.Duration

	// Coalescer is the group commit of Reserve and the finishes; it gives
	// the store the Batcher methods.
	*ledger.Coalescer
	// alwaysBatch sends a lone op through keybrake_batch too (tests).
	alwaysBatch bool
	// fallbacks counts batches whose transaction failed and whose ops
	// were written one by one.
	fallbacks atomic.Uint64

	// closed makes every later failure ErrUnavailable (see wrapErr).
	closed atomic.Bool
}

// Interface guards.
var (
	_ ledger.Store      = (*postgresStore)(nil)
	_ ledger.KeyWatcher = (*postgresStore)(nil)
)

// openPostgres connects to the server a postgres:// DSN names and applies
// pending migrations. Pool settings pgx understands (pool_max_conns,
// pool_max_conn_lifetime, connect_timeout...) may be given in the DSN.
func openPostgres(ctx context.Context, dsn string, logger *zap.Logger) (ledger.Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	redacted := ledger.RedactDSN(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password and all, so it is
		// not passed on.
		return nil, fmt.Errorf("parsing postgres ledger DSN %s: invalid connection string", redacted)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = postgresMaxConns
	}
	if !strings.Contains(dsn, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = postgresConnectTimeout
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, postgresErr("opening postgres ledger", err)
	}
	s := &postgresStore{
		pool:         pool,
		logger:       logger,
		listenConfig: cfg.ConnConfig.Copy(),
		watchPing:    30 * time.Second,
	}
	s.Coalescer = ledger.NewCoalescer(s.runBatch, 0)
	applied, err := s.migrate(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	logger.Info("postgres ledger opened",
		zap.String("dsn", redacted),
		zap.Int32("max_conns", cfg.MaxConns),
		zap.Strings("migrations_applied", applied))
	return s, nil
}

// Ping checks the server answers.
func (s *postgresStore) Ping(ctx context.Context) error {
	return s.wrapErr("pinging postgres ledger", s.pool.Ping(ctx))
}

// Close closes every pooled connection. A running WatchKeys is stopped by
// its own context, not by Close.
func (s *postgresStore) Close() error {
	drainCtx, cancel := context.WithTimeout(context.Background(), postgresCloseDrain)
	_ = s.Coalescer.Close(drainCtx)
	cancel()
	s.closed.Store(true)
	s.pool.Close()
	return nil
}

// wrapErr is postgresErr, except that any failure of a closed store is
// ErrUnavailable: a handler still holding it after a reload must fail closed.
func (s *postgresStore) wrapErr(op string, err error) error {
	if err != nil && s.closed.Load() {
		return fmt.Errorf("%s: %w: store closed", op, ledger.ErrUnavailable)
	}
	return postgresErr(op, err)
}
