package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"go.uber.org/zap"
)

// postgresKeysChannel is the NOTIFY channel RevokeKey writes key ids to.
const postgresKeysChannel = "keybrake_keys"

// Reconnect backoff for WatchKeys.
const (
	postgresWatchMinBackoff = 100 * time.Millisecond
	postgresWatchMaxBackoff = 10 * time.Second
)

// WatchKeys listens on keybrake_keys on a connection of its own and calls
// onChange with each changed key id. When the connection fails it
// reconnects with backoff and then calls onChange("*"): notifications sent
// while it was away are lost, so everything cached must go. It returns
// ctx.Err() once ctx is done.
func (s *postgresStore) WatchKeys(ctx context.Context, onChange func(keyID string)) error {
	return s.watch(ctx, postgresKeysChannel, onChange)
}

// watch holds LISTEN channel for WatchKeys and WatchApprovals: each
// payload goes to onChange, and "*" after a reconnect.
func (s *postgresStore) watch(ctx context.Context, channel string, onChange func(string)) error {
	backoff := postgresWatchMinBackoff
	missed := false // a failure happened since the last good LISTEN
	for {
		err := s.listen(ctx, channel, func() {
			// Connected and listening again: tell the caller what may
			// have been missed, and start the next backoff afresh.
			backoff = postgresWatchMinBackoff
			if missed {
				missed = false
				onChange("*")
			}
		}, onChange)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		missed = true
		s.logger.Warn("notifications interrupted; reconnecting", zap.String("channel", channel),
			zap.Duration("backoff", backoff), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, postgresWatchMaxBackoff)
	}
}

// listen holds one LISTEN connection on channel until it fails or ctx is
// done. listening is called once LISTEN is in place.
func (s *postgresStore) listen(ctx context.Context, channel string, listening func(), onChange func(string)) error {
	cfg := s.listenConfig.Copy()
	// A timed-out wait must leave the connection usable and must not send
	// the server a cancel request that could hit the next query, so a
	// deadline on the socket is all a cancelled context does here.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return postgresErr("connecting for key notifications", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return postgresErr("listening for key notifications", err)
	}
	listening()

	for {
		// Wake up every watchPing to check the server is still there: a
		// connection dropped without a FIN would otherwise wait forever.
		waitCtx, cancel := context.WithTimeout(ctx, s.watchPing)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			onChange(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err) && !conn.IsClosed():
			pingCtx, cancel := context.WithTimeout(ctx, s.watchPing)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("checking key notification connection: %w", err)
			}
		default:
			return postgresErr("waiting for key notifications", err)
		}
	}
}
