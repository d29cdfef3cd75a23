package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

var _ ledger.Outbox = (*sqliteStore)(nil)

func (s *sqliteStore) EnqueueEvent(ctx context.Context, e ledger.OutboxEvent) (bool, error) {
	var added bool
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO alert_outbox
			(id, webhook, dedupe_key, type, payload, created_at, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (webhook, dedupe_key) DO NOTHING`,
			e.ID, e.Webhook, e.DedupeKey, e.Type, e.Payload, sqliteTime(e.CreatedAt), sqliteTime(e.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		added = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("enqueueing event %s: %w", e.DedupeKey, err)
	}
	return added, nil
}

func (s *sqliteStore) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ledger.OutboxEvent, error) {
	var events []ledger.OutboxEvent
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		// One writer: the UPDATE's own transaction is the claim.
		rows, err := tx.QueryContext(ctx, `UPDATE alert_outbox
			SET next_attempt_at = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM alert_outbox
				WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= ?
				ORDER BY next_attempt_at, created_at LIMIT ?)
			RETURNING id, webhook, dedupe_key, type, payload, created_at, attempts`,
			sqliteTime(now.Add(lease)), sqliteTime(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e ledger.OutboxEvent
			var created int64
			if err := rows.Scan(&e.ID, &e.Webhook, &e.DedupeKey, &e.Type, &e.Payload, &created, &e.Attempts); err != nil {
				return err
			}
			e.CreatedAt = sqliteFromNanos(created)
			events = append(events, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claiming events: %w", err)
	}
	ledger.SortOutbox(events)
	return events, nil
}

func (s *sqliteStore) EventDelivered(ctx context.Context, id string, now time.Time) error {
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		_, err := tx.ExecContext(ctx, `UPDATE alert_outbox SET delivered_at = ?, last_error = '' WHERE id = ?`,
			sqliteTime(now), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("marking event %s delivered: %w", id, err)
	}
	return nil
}

func (s *sqliteStore) EventFailed(ctx context.Context, id string, lastError string, next time.Time, giveUp bool) error {
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		var gaveUp any
		if giveUp {
			gaveUp = sqliteTime(next)
		}
		_, err := tx.ExecContext(ctx, `UPDATE alert_outbox
			SET next_attempt_at = ?, last_error = ?, gave_up_at = ? WHERE id = ? AND delivered_at IS NULL`,
			sqliteTime(next), lastError, gaveUp, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("recording failed event %s: %w", id, err)
	}
	return nil
}

func (s *sqliteStore) PendingEvents(ctx context.Context) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx,
		`SELECT count(*) FROM alert_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting pending events: %w", s.mapErr(err))
	}
	return n, nil
}
