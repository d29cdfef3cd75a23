package postgres

import (
	"context"
	"hash/fnv"

	"github.com/keybrake/keybrake/ledger"
)

// TryLock takes a session-level advisory lock on a connection it keeps
// until release, so the lock lasts exactly as long as its holder: a node
// that dies drops its connection and with it the lock.
func (s *postgresStore) TryLock(ctx context.Context, name string) (func(), bool, error) {
	h := fnv.New64a()
	_, _ = h.Write([]byte("keybrake:" + name))
	id := int64(h.Sum64())
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, s.wrapErr("taking lock", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, id).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, s.wrapErr("taking lock", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, id); err != nil {
			// Closing the connection ends the session and its lock.
			_ = conn.Conn().Close(context.Background())
		}
		conn.Release()
	}, true, nil
}

var _ ledger.Locker = (*postgresStore)(nil)
