package sqlite

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keybrake/keybrake/ledger"
)

// mapErr turns a driver error into the Store's error vocabulary so callers
// can test it with errors.Is: unique violations are ErrConflict, a missing
// referenced key is ErrNotFound, and anything that means the file cannot be
// used (locked past busy_timeout, unreadable, full, closed) is
// ErrUnavailable, on which the gate fails closed. Errors already in that
// vocabulary, and context errors, pass through unchanged.
func (s *sqliteStore) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrConflict) || errors.Is(err, ledger.ErrUnavailable) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch code := se.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", ledger.ErrConflict, err)
		case code == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", ledger.ErrNotFound, err)
		case sqliteUnavailableCodes[code&0xff]:
			return fmt.Errorf("%w: %w", ledger.ErrUnavailable, err)
		}
		return err
	}
	if s.closed.Load() || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return fmt.Errorf("%w: %w", ledger.ErrUnavailable, err)
	}
	return err
}

// sqliteUnavailableCodes are the primary result codes that say the database
// file cannot be used right now, rather than that the request was wrong.
var sqliteUnavailableCodes = map[int]bool{
	sqlite3.SQLITE_BUSY:     true,
	sqlite3.SQLITE_LOCKED:   true,
	sqlite3.SQLITE_NOMEM:    true,
	sqlite3.SQLITE_READONLY: true,
	sqlite3.SQLITE_IOERR:    true,
	sqlite3.SQLITE_CORRUPT:  true,
	sqlite3.SQLITE_FULL:     true,
	sqlite3.SQLITE_CANTOPEN: true,
	sqlite3.SQLITE_PROTOCOL: true,
	sqlite3.SQLITE_NOTADB:   true,
	sqlite3.SQLITE_PERM:     true,
	sqlite3.SQLITE_AUTH:     true,
}
