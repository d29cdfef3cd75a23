package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
)

var _ ledger.Outbox = (*postgresStore)(nil)

func (s *postgresStore) EnqueueEvent(ctx context.Context, e ledger.OutboxEvent) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO alert_outbox
		(id, webhook, dedupe_key, type, payload, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (webhook, dedupe_key) DO NOTHING`,
		e.ID, e.Webhook, e.DedupeKey, e.Type, e.Payload, e.CreatedAt)
	if err != nil {
		return false, s.wrapErr("enqueueing event "+e.DedupeKey, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *postgresStore) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ledger.OutboxEvent, error) {
	// SKIP LOCKED: senders on several nodes claim disjoint rows; the lease
	// (next_attempt_at moved forward) keeps them claimed after the commit.
	rows, err := s.pool.Query(ctx, `UPDATE alert_outbox o
		SET next_attempt_at = $2, attempts = o.attempts + 1
		FROM (SELECT id FROM alert_outbox
			WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1
			ORDER BY next_attempt_at, created_at LIMIT $3
			FOR UPDATE SKIP LOCKED) due
		WHERE o.id = due.id
		RETURNING o.id, o.webhook, o.dedupe_key, o.type, o.payload, o.created_at, o.attempts`,
		now, now.Add(lease), limit)
	if err != nil {
		return nil, s.wrapErr("claiming events", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ledger.OutboxEvent, error) {
		var e ledger.OutboxEvent
		err := row.Scan(&e.ID, &e.Webhook, &e.DedupeKey, &e.Type, &e.Payload, &e.CreatedAt, &e.Attempts)
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, s.wrapErr("claiming events", err)
	}
	ledger.SortOutbox(events)
	return events, nil
}

func (s *postgresStore) EventDelivered(ctx context.Context, id string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE alert_outbox SET delivered_at = $2, last_error = '' WHERE id = $1`, id, now)
	return s.wrapErr("marking event "+id+" delivered", err)
}

func (s *postgresStore) EventFailed(ctx context.Context, id string, lastError string, next time.Time, giveUp bool) error {
	var gaveUp *time.Time
	if giveUp {
		gaveUp = &next
	}
	_, err := s.pool.Exec(ctx, `UPDATE alert_outbox
		SET next_attempt_at = $2, last_error = $3, gave_up_at = $4 WHERE id = $1 AND delivered_at IS NULL`,
		id, next, lastError, gaveUp)
	return s.wrapErr("recording failed event "+id, err)
}

func (s *postgresStore) PendingEvents(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx,
		`SELECT count(*) FROM alert_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL`).Scan(&n)
	return n, s.wrapErr("counting pending events", err)
}
