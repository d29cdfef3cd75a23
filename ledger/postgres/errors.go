package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keybrake/keybrake/ledger"
)

// postgresErr wraps a driver error for the operation op, mapping it onto the
// ledger's sentinels so callers can use errors.Is: a server that cannot be
// reached becomes ErrUnavailable (the gate fails closed on it), a unique
// violation ErrConflict, a missing row ErrNotFound.
func postgresErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ledger.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505": // unique_violation
			return fmt.Errorf("%s: %w: %s", op, ledger.ErrConflict, pgErr.ConstraintName)
		case pgErr.Code == "P0002": // no_data_found, raised by our functions
			return fmt.Errorf("%s: %w", op, ledger.ErrNotFound)
		case postgresServerUnavailable(pgErr.Code):
			return fmt.Errorf("%s: %w: %w", op, ledger.ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if postgresUnreachable(err) {
		return fmt.Errorf("%s: %w: %w", op, ledger.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// postgresServerUnavailable tells whether a server error means the server
// cannot serve us right now, rather than that our statement is wrong.
func postgresServerUnavailable(code string) bool {
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, recovering)
		"53300": // too_many_connections
		return true
	}
	return strings.HasPrefix(code, "08") // connection_exception class
}

// postgresUnreachable tells whether a client-side error means the server
// could not be reached or went away. A caller that cancelled its own context
// is not an outage; a deadline that expired while waiting on the server is
// treated as one, since the gate must fail closed rather than wait.
func postgresUnreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr),
		errors.As(err, &netErr),
		pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}
