package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

var _ ledger.ApprovalStore = (*sqliteStore)(nil)

// sqliteApprovalColumns are read by sqliteScanApproval, in this order.
const sqliteApprovalColumns = `id, key_id, token_id, run_label, vendor, method, path, endpoint, subjects,
	estimate, request_hash, call_id, status, decided_by, reason, decided_at, requested_at, expires_at,
	consumed_by, consumed_at`

func sqliteScanApproval(row sqliteScanner) (ledger.Approval, error) {
	var a ledger.Approval
	var estimate, requested, expires int64
	var decided, consumed sql.NullInt64
	err := row.Scan(&a.ID, &a.KeyID, &a.TokenID, &a.RunLabel, &a.Vendor, &a.Method, &a.Path, &a.Endpoint,
		&a.Subjects, &estimate, &a.RequestHash, &a.CallID, &a.Status, &a.DecidedBy, &a.Reason, &decided,
		&requested, &expires, &a.ConsumedBy, &consumed)
	if err != nil {
		return ledger.Approval{}, err
	}
	a.Estimate = money.Micros(estimate)
	a.DecidedAt, a.ConsumedAt = sqliteFromNullNanos(decided), sqliteFromNullNanos(consumed)
	a.RequestedAt, a.ExpiresAt = sqliteFromNanos(requested), sqliteFromNanos(expires)
	return a, nil
}

func (s *sqliteStore) CreateApproval(ctx context.Context, a ledger.Approval) error {
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO approvals (id, key_id, token_id, run_label, vendor, method,
			path, endpoint, subjects, estimate, request_hash, call_id, status, requested_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
			a.ID, a.KeyID, a.TokenID, a.RunLabel, a.Vendor, a.Method, a.Path, a.Endpoint, a.Subjects,
			int64(a.Estimate), a.RequestHash, a.CallID, sqliteTime(a.RequestedAt), sqliteTime(a.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("creating approval %s: %w", a.ID, err)
	}
	return nil
}

func (s *sqliteStore) GetApproval(ctx context.Context, id string) (ledger.Approval, error) {
	a, err := sqliteScanApproval(s.read.QueryRowContext(ctx,
		`SELECT `+sqliteApprovalColumns+` FROM approvals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("getting approval %s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("getting approval %s: %w", id, s.mapErr(err))
	}
	return a, nil
}

func (s *sqliteStore) ListApprovals(ctx context.Context, f ledger.ApprovalFilter) ([]ledger.Approval, error) {
	limit, err := ledger.PageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	now := sqliteTime(f.Now)
	where, args := `WHERE (? = '' OR key_id = ?)`, []any{f.KeyID, f.KeyID}
	switch f.Status {
	case "":
	case ledger.ApprovalPending, ledger.ApprovalApproved:
		where += ` AND status = ? AND expires_at > ?`
		args = append(args, f.Status, now)
	case ledger.ApprovalExpired:
		where += ` AND status IN ('pending', 'approved') AND expires_at <= ?`
		args = append(args, now)
	default:
		where += ` AND status = ?`
		args = append(args, f.Status)
	}
	out, err := s.queryApprovals(ctx, `SELECT `+sqliteApprovalColumns+` FROM approvals `+where+
		` ORDER BY requested_at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("listing approvals: %w", err)
	}
	return out, nil
}

// queryApprovals reads every approval a query returns.
func (s *sqliteStore) queryApprovals(ctx context.Context, query string, args ...any) ([]ledger.Approval, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []ledger.Approval
	for rows.Next() {
		a, err := sqliteScanApproval(rows)
		if err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, a)
	}
	return out, s.mapErr(rows.Err())
}

func (s *sqliteStore) DecideApproval(ctx context.Context, id string, d ledger.ApprovalDecision) (ledger.Approval, error) {
	status := ledger.ApprovalDenied
	if d.Approve {
		status = ledger.ApprovalApproved
	}
	var a ledger.Approval
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		var err error
		a, err = sqliteScanApproval(tx.QueryRowContext(ctx, `UPDATE approvals
			SET status = ?, decided_by = ?, reason = ?, decided_at = ?
			WHERE id = ? AND status = 'pending' AND expires_at > ?
			RETURNING `+sqliteApprovalColumns, status, d.By, d.Reason, sqliteTime(d.Now), id, sqliteTime(d.Now)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		if _, gerr := s.GetApproval(ctx, id); gerr != nil {
			return ledger.Approval{}, gerr
		}
		return ledger.Approval{}, fmt.Errorf("deciding approval %s: %w", id, ledger.ErrNotPending)
	}
	if err != nil {
		return ledger.Approval{}, fmt.Errorf("deciding approval %s: %w", id, err)
	}
	s.decided.Decided(id)
	return a, nil
}

func (s *sqliteStore) ConsumeApproval(ctx context.Context, id, keyID, requestHash, callID string, now time.Time) (ledger.Approval, error) {
	var a ledger.Approval
	// One statement in the one writer's transaction: two calls racing
	// for the approval are serialised, and the second finds it consumed.
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		var err error
		a, err = sqliteScanApproval(tx.QueryRowContext(ctx, `UPDATE approvals
			SET status = 'consumed', consumed_by = ?1, consumed_at = ?2
			WHERE id = (SELECT id FROM approvals
				WHERE key_id = ?3 AND request_hash = ?4 AND status = 'approved' AND expires_at > ?2
				  AND (?5 = '' OR id = ?5)
				  AND EXISTS (SELECT 1 FROM keys k WHERE k.id = ?3 AND k.revoked_at IS NULL AND k.expires_at > ?2)
				ORDER BY requested_at LIMIT 1)
			RETURNING `+sqliteApprovalColumns,
			callID, sqliteTime(now), keyID, requestHash, id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Approval{}, fmt.Errorf("consuming approval: %w", ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.Approval{}, fmt.Errorf("consuming approval: %w", err)
	}
	return a, nil
}

// WatchApprovals hears the decisions made through this store: one node,
// one process.
func (s *sqliteStore) WatchApprovals(ctx context.Context, onDecided func(string)) error {
	return s.decided.Watch(ctx, onDecided)
}

func (s *sqliteStore) ApprovalsOfCalls(ctx context.Context, callIDs []string) ([]ledger.Approval, error) {
	if len(callIDs) == 0 {
		return nil, nil
	}
	ids, err := json.Marshal(callIDs)
	if err != nil {
		return nil, fmt.Errorf("approvals of calls: %w", err)
	}
	out, err := s.queryApprovals(ctx, `SELECT `+sqliteApprovalColumns+` FROM approvals
		WHERE call_id IN (SELECT value FROM json_each(?1))
		   OR (consumed_by <> '' AND consumed_by IN (SELECT value FROM json_each(?1)))`, string(ids))
	if err != nil {
		return nil, fmt.Errorf("approvals of calls: %w", err)
	}
	return out, nil
}
