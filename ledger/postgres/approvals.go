package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

var _ ledger.ApprovalStore = (*postgresStore)(nil)

// postgresApprovalsChannel is the NOTIFY channel DecideApproval writes
// approval ids to, so the node holding the call wakes at once.
const postgresApprovalsChannel = "keybrake_approvals"

// postgresApprovalColumns are read by scanPostgresApproval, in this order.
const postgresApprovalColumns = `a.id, a.key_id, a.token_id, a.run_label, a.vendor, a.method, a.path,
	a.endpoint, a.subjects, a.estimate, a.request_hash, a.call_id, a.status, a.decided_by, a.reason,
	a.decided_at, a.requested_at, a.expires_at, a.consumed_by, a.consumed_at`

func scanPostgresApproval(row pgx.Row) (ledger.Approval, error) {
	var a ledger.Approval
	var estimate int64
	err := row.Scan(&a.ID, &a.KeyID, &a.TokenID, &a.RunLabel, &a.Vendor, &a.Method, &a.Path,
		&a.Endpoint, &a.Subjects, &estimate, &a.RequestHash, &a.CallID, &a.Status, &a.DecidedBy, &a.Reason,
		&a.DecidedAt, &a.RequestedAt, &a.ExpiresAt, &a.ConsumedBy, &a.ConsumedAt)
	if err != nil {
		return ledger.Approval{}, err
	}
	a.Estimate = money.Micros(estimate)
	a.RequestedAt, a.ExpiresAt = a.RequestedAt.UTC(), a.ExpiresAt.UTC()
	a.DecidedAt, a.ConsumedAt = utcPtr(a.DecidedAt), utcPtr(a.ConsumedAt)
	return a, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (s *postgresStore) CreateApproval(ctx context.Context, a ledger.Approval) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO approvals (id, key_id, token_id, run_label, vendor, method,
		path, endpoint, subjects, estimate, request_hash, call_id, status, requested_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14)`,
		a.ID, a.KeyID, a.TokenID, a.RunLabel, a.Vendor, a.Method, a.Path, a.Endpoint, a.Subjects,
		int64(a.Estimate), a.RequestHash, a.CallID, a.RequestedAt, a.ExpiresAt)
	return s.wrapErr("creating approval", err)
}

func (s *postgresStore) GetApproval(ctx context.Context, id string) (ledger.Approval, error) {
	a, err := scanPostgresApproval(s.pool.QueryRow(ctx,
		`SELECT `+postgresApprovalColumns+` FROM approvals a WHERE a.id = $1`, id))
	return a, s.wrapErr("getting approval", err)
}

func (s *postgresStore) ListApprovals(ctx context.Context, f ledger.ApprovalFilter) ([]ledger.Approval, error) {
	limit, err := ledger.PageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+postgresApprovalColumns+` FROM approvals a
		WHERE ($1 = '' OR a.key_id = $1)
		  AND CASE $2
			WHEN '' THEN true
			WHEN 'pending' THEN a.status = 'pending' AND a.expires_at > $3
			WHEN 'approved' THEN a.status = 'approved' AND a.expires_at > $3
			WHEN 'expired' THEN a.status IN ('pending', 'approved') AND a.expires_at <= $3
			ELSE a.status = $2 END
		ORDER BY a.requested_at DESC, a.id DESC LIMIT $4`, f.KeyID, f.Status, f.Now, limit)
	if err != nil {
		return nil, s.wrapErr("listing approvals", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Approval, error) {
		return scanPostgresApproval(r)
	})
	return out, s.wrapErr("listing approvals", err)
}

// DecideApproval decides and notifies in one statement: the notification
// is delivered when the decision commits, never for one rolled back.
func (s *postgresStore) DecideApproval(ctx context.Context, id string, d ledger.ApprovalDecision) (ledger.Approval, error) {
	status := ledger.ApprovalDenied
	if d.Approve {
		status = ledger.ApprovalApproved
	}
	a, err := scanPostgresApproval(s.pool.QueryRow(ctx, `WITH a AS (
			UPDATE approvals SET status = $2, decided_by = $3, reason = $4, decided_at = $5
			WHERE id = $1 AND status = 'pending' AND expires_at > $5
			RETURNING *
		)
		SELECT `+postgresApprovalColumns+` FROM a, pg_notify('`+postgresApprovalsChannel+`', a.id) AS n`,
		id, status, d.By, d.Reason, d.Now))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := s.GetApproval(ctx, id); gerr != nil {
			return ledger.Approval{}, gerr
		}
		return ledger.Approval{}, fmt.Errorf("deciding approval %s: %w", id, ledger.ErrNotPending)
	}
	return a, s.wrapErr("deciding approval", err)
}

// ConsumeApproval is one UPDATE: the row is locked by the first node to
// reach it (SKIP LOCKED sends a racing node to the next candidate, or to
// none), and the status is checked again under the lock.
func (s *postgresStore) ConsumeApproval(ctx context.Context, id, keyID, requestHash, callID string, now time.Time) (ledger.Approval, error) {
	a, err := scanPostgresApproval(s.pool.QueryRow(ctx, `WITH a AS (
			UPDATE approvals SET status = 'consumed', consumed_by = $4, consumed_at = $5
			WHERE id = (SELECT id FROM approvals
				WHERE key_id = $2 AND request_hash = $3 AND status = 'approved' AND expires_at > $5
				  AND ($1 = '' OR id = $1)
				  AND EXISTS (SELECT 1 FROM vault_keys k WHERE k.id = $2 AND k.revoked_at IS NULL AND k.expires_at > $5)
				ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED)
			  AND status = 'approved'
			RETURNING *
		)
		SELECT `+postgresApprovalColumns+` FROM a`, id, keyID, requestHash, callID, now))
	return a, s.wrapErr("consuming approval", err)
}

// WatchApprovals listens on keybrake_approvals (see WatchKeys).
func (s *postgresStore) WatchApprovals(ctx context.Context, onDecided func(string)) error {
	return s.watch(ctx, postgresApprovalsChannel, onDecided)
}

func (s *postgresStore) ApprovalsOfCalls(ctx context.Context, callIDs []string) ([]ledger.Approval, error) {
	if len(callIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+postgresApprovalColumns+` FROM approvals a
		WHERE a.call_id = ANY ($1) OR (a.consumed_by <> '' AND a.consumed_by = ANY ($1))`, callIDs)
	if err != nil {
		return nil, s.wrapErr("approvals of calls", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Approval, error) {
		return scanPostgresApproval(r)
	})
	return out, s.wrapErr("approvals of calls", err)
}
