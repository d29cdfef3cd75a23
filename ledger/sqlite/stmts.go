package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// sqliteStmts keeps the write connection's statements prepared, so the
// single-writer critical section does not parse SQL on every call (it was a
// sixth of the gate's CPU on the embedded ledger).
//
// A statement cannot be prepared on the pool while a transaction holds its
// only connection, so a statement first seen inside a transaction runs
// unprepared that once and is prepared after the transaction ends.
type sqliteStmts struct {
	mu       sync.RWMutex
	prepared map[string]*sql.Stmt
	wanted   map[string]bool
}

func newSQLiteStmts() *sqliteStmts {
	return &sqliteStmts{prepared: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

func (c *sqliteStmts) get(query string) *sql.Stmt {
	c.mu.RLock()
	st := c.prepared[query]
	c.mu.RUnlock()
	if st == nil {
		c.mu.Lock()
		c.wanted[query] = true
		c.mu.Unlock()
	}
	return st
}

// prepareWanted prepares the statements seen since the last call. It must
// run with no transaction open on db in this goroutine.
func (c *sqliteStmts) prepareWanted(ctx context.Context, db *sql.DB) {
	c.mu.Lock()
	wanted := c.wanted
	c.wanted = map[string]bool{}
	c.mu.Unlock()
	for q := range wanted {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			continue // it runs unprepared; the statement reports its own error
		}
		c.mu.Lock()
		if c.prepared[q] == nil {
			c.prepared[q] = st
			st = nil
		}
		c.mu.Unlock()
		if st != nil {
			_ = st.Close()
		}
	}
}

func (c *sqliteStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.prepared {
		_ = st.Close()
	}
	c.prepared = map[string]*sql.Stmt{}
}

// sqliteTx is a write transaction whose statements use the prepared cache.
// It offers the *sql.Tx methods the store uses, with the same signatures.
type sqliteTx struct {
	tx    *sql.Tx
	stmts *sqliteStmts
}

func (t *sqliteTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmts.get(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *sqliteTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmts.get(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t *sqliteTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmts.get(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}
