package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

func (s *sqliteStore) CreateKey(ctx context.Context, k ledger.Key) error {
	endpoints := k.AllowedEndpoints
	if endpoints == nil {
		endpoints = []string{}
	}
	endpointsJSON, err := json.Marshal(endpoints)
	if err != nil {
		return fmt.Errorf("creating key: encoding allowed endpoints: %w", err)
	}
	var metadata sql.NullString
	if len(k.Metadata) > 0 {
		if !json.Valid(k.Metadata) {
			return fmt.Errorf("creating key: metadata is not valid JSON")
		}
		metadata = sql.NullString{String: string(k.Metadata), Valid: true}
	}
	var revokedAt sql.NullInt64
	if k.RevokedAt != nil {
		revokedAt = sql.NullInt64{Int64: sqliteTime(*k.RevokedAt), Valid: true}
	}
	rs := ledger.StoreRules(k.Rules)
	err = s.inWriteTx(ctx, func(tx *sqliteTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO keys
			(id, hash, vendor, daily_cap, total_cap, allowed_endpoints, run_label, metadata,
			 created_at, expires_at, revoked_at, token_id, approval, rules, max_calls, rate_calls, rate_window_us, once_per)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Hash[:], k.Vendor, sqliteNullMicros(k.DailyCap), sqliteNullMicros(k.TotalCap),
			string(endpointsJSON), k.RunLabel, metadata,
			sqliteTime(k.CreatedAt), sqliteTime(k.ExpiresAt), revokedAt, k.TokenID, ledger.EncodeApprovalRule(k.Approval),
			rs.JSON, sqliteNullInt64(rs.MaxCalls), sqliteNullInt64(rs.RateCalls), sqliteNullInt64(rs.RateWindowUS), rs.OncePer)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating key %s: %w", k.ID, err)
	}
	return nil
}

func (s *sqliteStore) KeyByHash(ctx context.Context, h ledger.Hash) (ledger.Key, error) {
	// The day only feeds usage columns that Key does not carry.
	row := s.read.QueryRowContext(ctx,
		`SELECT `+sqliteKeyColumns+` FROM `+sqliteKeyFrom+` WHERE k.hash = ?`, int64(0), h[:])
	ku, err := sqliteScanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Key{}, fmt.Errorf("finding key by hash: %w", ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.Key{}, fmt.Errorf("finding key by hash: %w", s.mapErr(err))
	}
	return ku.Key, nil
}

func (s *sqliteStore) GetKey(ctx context.Context, id string, now time.Time) (ledger.KeyUsage, error) {
	row := s.read.QueryRowContext(ctx,
		`SELECT `+sqliteKeyColumns+` FROM `+sqliteKeyFrom+` WHERE k.id = ?`, sqliteDay(now), id)
	ku, err := sqliteScanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.KeyUsage{}, fmt.Errorf("getting key %s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.KeyUsage{}, fmt.Errorf("getting key %s: %w", id, s.mapErr(err))
	}
	return ku, nil
}

func (s *sqliteStore) ListKeys(ctx context.Context, f ledger.KeyFilter) ([]ledger.KeyUsage, string, error) {
	limit, after, err := f.Page()
	if err != nil {
		return nil, "", fmt.Errorf("listing keys: %w", err)
	}
	now := sqliteTime(f.Now)
	where := []string{"1 = 1"}
	args := []any{sqliteDay(f.Now)}
	if f.RunLabel != "" {
		where = append(where, "k.run_label = ?")
		args = append(args, f.RunLabel)
	}
	if f.Vendor != "" {
		where = append(where, "k.vendor = ?")
		args = append(args, f.Vendor)
	}
	if f.TokenID != "" {
		where = append(where, "k.token_id = ?")
		args = append(args, f.TokenID)
	}
	// The same rules as Key.Status: revocation wins, expiry at ExpiresAt.
	switch f.Status {
	case "":
	case ledger.StatusActive:
		where = append(where, "k.revoked_at IS NULL AND k.expires_at > ?")
		args = append(args, now)
	case ledger.StatusExpired:
		where = append(where, "k.revoked_at IS NULL AND k.expires_at <= ?")
		args = append(args, now)
	case ledger.StatusRevoked:
		where = append(where, "k.revoked_at IS NOT NULL")
	}
	if after != nil {
		created := sqliteTime(after.CreatedAt)
		where = append(where, "(k.created_at < ? OR (k.created_at = ? AND k.id < ?))")
		args = append(args, created, created, after.ID)
	}
	// One row more than the page tells whether there is a next page.
	args = append(args, limit+1)
	rows, err := s.read.QueryContext(ctx, `SELECT `+sqliteKeyColumns+` FROM `+sqliteKeyFrom+
		` WHERE `+strings.Join(where, " AND ")+
		` ORDER BY k.created_at DESC, k.id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing keys: %w", s.mapErr(err))
	}
	defer rows.Close()
	var keys []ledger.KeyUsage
	for rows.Next() {
		ku, err := sqliteScanKey(rows)
		if err != nil {
			return nil, "", fmt.Errorf("listing keys: %w", s.mapErr(err))
		}
		keys = append(keys, ku)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing keys: %w", s.mapErr(err))
	}
	keys, next := ledger.TrimPage(keys, limit, func(last int) string {
		return ledger.KeyCursor{CreatedAt: keys[last].CreatedAt, ID: keys[last].ID}.Encode()
	})
	return keys, next, nil
}

func (s *sqliteStore) RevokeKey(ctx context.Context, id string, now time.Time) (ledger.Key, error) {
	var ku ledger.KeyUsage
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		if err := sqliteRevokeRow(ctx, tx, "keys", id, now); err != nil {
			return err
		}
		var err error
		ku, err = sqliteScanKey(tx.QueryRowContext(ctx,
			`SELECT `+sqliteKeyColumns+` FROM `+sqliteKeyFrom+` WHERE k.id = ?`, sqliteDay(now), id))
		return err
	})
	if err != nil {
		return ledger.Key{}, fmt.Errorf("revoking key %s: %w", id, err)
	}
	return ku.Key, nil
}

// sqliteRevokeRow marks the row id of table (keys, api_tokens) revoked,
// keeping the first revocation time (COALESCE); ErrNotFound when there is
// no such row.
func sqliteRevokeRow(ctx context.Context, tx *sqliteTx, table, id string, now time.Time) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE `+table+` SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, sqliteTime(now), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ledger.ErrNotFound
	}
	return nil
}
