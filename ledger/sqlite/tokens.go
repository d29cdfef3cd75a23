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
	"github.com/keybrake/keybrake/money"
)

// sqliteTokenColumns are read by sqliteScanToken, in this order, from
// sqliteTokenFrom.
const sqliteTokenColumns = `t.id, t.hash, t.name, t.role, t.policy, t.daily_cap, t.total_cap,
	t.created_at, t.revoked_at, t.spent, t.reserved, COALESCE(d.spent, 0), COALESCE(d.reserved, 0)`

// sqliteTokenFrom joins each token to its day row; the day is the first
// argument.
const sqliteTokenFrom = `api_tokens t LEFT JOIN token_days d ON d.token_id = t.id AND d.day = ?`

func (s *sqliteStore) CreateToken(ctx context.Context, t ledger.Token) error {
	var policy sql.NullString
	if len(t.Policy) > 0 {
		if !json.Valid(t.Policy) {
			return errors.New("creating token: policy is not valid JSON")
		}
		policy = sql.NullString{String: string(t.Policy), Valid: true}
	}
	var revokedAt sql.NullInt64
	if t.RevokedAt != nil {
		revokedAt = sql.NullInt64{Int64: sqliteTime(*t.RevokedAt), Valid: true}
	}
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens
			(id, hash, name, role, policy, daily_cap, total_cap, created_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Hash[:], t.Name, t.Role, policy, sqliteNullMicros(t.DailyCap), sqliteNullMicros(t.TotalCap),
			sqliteTime(t.CreatedAt), revokedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating token %s: %w", t.ID, err)
	}
	return nil
}

func (s *sqliteStore) TokenByHash(ctx context.Context, h ledger.Hash) (ledger.Token, error) {
	u, err := sqliteScanToken(s.read.QueryRowContext(ctx,
		`SELECT `+sqliteTokenColumns+` FROM `+sqliteTokenFrom+` WHERE t.hash = ?`, int64(0), h[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Token{}, fmt.Errorf("finding token by hash: %w", ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.Token{}, fmt.Errorf("finding token by hash: %w", s.mapErr(err))
	}
	return u.Token, nil
}

func (s *sqliteStore) GetToken(ctx context.Context, id string, now time.Time) (ledger.TokenUsage, error) {
	u, err := sqliteScanToken(s.read.QueryRowContext(ctx,
		`SELECT `+sqliteTokenColumns+` FROM `+sqliteTokenFrom+` WHERE t.id = ?`, sqliteDay(now), id))
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.TokenUsage{}, fmt.Errorf("getting token %s: %w", id, ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.TokenUsage{}, fmt.Errorf("getting token %s: %w", id, s.mapErr(err))
	}
	return u, nil
}

func (s *sqliteStore) ListTokens(ctx context.Context, now time.Time) ([]ledger.TokenUsage, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+sqliteTokenColumns+` FROM `+sqliteTokenFrom+
		` ORDER BY t.created_at DESC, t.id DESC`, sqliteDay(now))
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []ledger.TokenUsage
	for rows.Next() {
		u, err := sqliteScanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("listing tokens: %w", s.mapErr(err))
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing tokens: %w", s.mapErr(err))
	}
	return out, nil
}

func (s *sqliteStore) RevokeToken(ctx context.Context, id string, now time.Time) (ledger.Token, error) {
	var u ledger.TokenUsage
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		if err := sqliteRevokeRow(ctx, tx, "api_tokens", id, now); err != nil {
			return err
		}
		var err error
		u, err = sqliteScanToken(tx.QueryRowContext(ctx,
			`SELECT `+sqliteTokenColumns+` FROM `+sqliteTokenFrom+` WHERE t.id = ?`, sqliteDay(now), id))
		return err
	})
	if err != nil {
		return ledger.Token{}, fmt.Errorf("revoking token %s: %w", id, err)
	}
	return u.Token, nil
}

func (s *sqliteStore) RevokeKeys(ctx context.Context, f ledger.RevokeFilter, now time.Time) ([]string, error) {
	var where []string
	var args []any
	if f.RunLabel != "" {
		where = append(where, "run_label = ?")
		args = append(args, f.RunLabel)
	}
	if f.TokenID != "" {
		where = append(where, "token_id = ?")
		args = append(args, f.TokenID)
	}
	if len(where) == 0 {
		return nil, errors.New("revoking keys: no filter")
	}
	var ids []string
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE keys SET revoked_at = ? WHERE revoked_at IS NULL AND `+
			strings.Join(where, " AND ")+` RETURNING id`, append([]any{sqliteTime(now)}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("revoking keys: %w", err)
	}
	return ids, nil
}

func (s *sqliteStore) PatchKey(ctx context.Context, id string, p ledger.KeyPatch) (ledger.Key, error) {
	var endpoints sql.NullString
	if p.AllowedEndpoints != nil {
		b, err := json.Marshal(p.AllowedEndpoints)
		if err != nil {
			return ledger.Key{}, fmt.Errorf("patching key %s: encoding allowed endpoints: %w", id, err)
		}
		endpoints = sql.NullString{String: string(b), Valid: true}
	}
	var expires sql.NullInt64
	if p.ExpiresAt != nil {
		expires = sql.NullInt64{Int64: sqliteTime(*p.ExpiresAt), Valid: true}
	}
	var ku ledger.KeyUsage
	err := s.inWriteTx(ctx, func(tx *sqliteTx) error {
		rs := ledger.StoreRules(p.Rules)
		setApproval, approval := p.ApprovalChange()
		var oldRate sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT rate_calls FROM keys WHERE id = ?`, id).Scan(&oldRate); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ledger.ErrNotFound
			}
			return err
		}
		// The key exists (read above, in this write transaction).
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET
				daily_cap = COALESCE(?, daily_cap),
				total_cap = COALESCE(?, total_cap),
				expires_at = COALESCE(?, expires_at),
				allowed_endpoints = COALESCE(?, allowed_endpoints),
				rules = CASE WHEN ? THEN ? ELSE rules END,
				max_calls = CASE WHEN ? THEN ? ELSE max_calls END,
				rate_calls = CASE WHEN ? THEN ? ELSE rate_calls END,
				rate_window_us = CASE WHEN ? THEN ? ELSE rate_window_us END,
				once_per = CASE WHEN ? THEN ? ELSE once_per END,
				approval = CASE WHEN ? THEN ? ELSE approval END
			WHERE id = ?`,
			sqliteNullMicros(p.DailyCap), sqliteNullMicros(p.TotalCap), expires, endpoints,
			p.Rules != nil, rs.JSON, p.Rules != nil, sqliteNullInt64(rs.MaxCalls),
			p.Rules != nil, sqliteNullInt64(rs.RateCalls), p.Rules != nil, sqliteNullInt64(rs.RateWindowUS),
			p.Rules != nil, rs.OncePer, setApproval, approval, id); err != nil {
			return err
		}
		if p.Rules != nil && rs.RateCalls != nil && (!oldRate.Valid || oldRate.Int64 != *rs.RateCalls) {
			if err := sqliteReslotRate(ctx, tx, id, *rs.RateCalls); err != nil {
				return err
			}
		}
		var err error
		ku, err = sqliteScanKey(tx.QueryRowContext(ctx,
			`SELECT `+sqliteKeyColumns+` FROM `+sqliteKeyFrom+` WHERE k.id = ?`, int64(0), id))
		return err
	})
	if err != nil {
		return ledger.Key{}, fmt.Errorf("patching key %s: %w", id, err)
	}
	return ku.Key, nil
}

func sqliteScanToken(row sqliteScanner) (ledger.TokenUsage, error) {
	var (
		u                     ledger.TokenUsage
		hash                  []byte
		policy                sql.NullString
		dailyCap, totalCap    sql.NullInt64
		createdAt             int64
		revokedAt             sql.NullInt64
		spent, reserved       int64
		daySpent, dayReserved int64
	)
	if err := row.Scan(&u.ID, &hash, &u.Name, &u.Role, &policy, &dailyCap, &totalCap,
		&createdAt, &revokedAt, &spent, &reserved, &daySpent, &dayReserved); err != nil {
		return ledger.TokenUsage{}, err
	}
	if len(hash) != len(u.Hash) {
		return ledger.TokenUsage{}, fmt.Errorf("token %s: stored hash has %d bytes", u.ID, len(hash))
	}
	copy(u.Hash[:], hash)
	if policy.Valid {
		u.Policy = json.RawMessage(policy.String)
	}
	u.DailyCap = sqliteMicrosPtr(dailyCap)
	u.TotalCap = sqliteMicrosPtr(totalCap)
	u.CreatedAt = sqliteFromNanos(createdAt)
	u.RevokedAt = sqliteFromNullNanos(revokedAt)
	u.Spent, u.Reserved = money.Micros(spent), money.Micros(reserved)
	u.DaySpent, u.DayReserved = money.Micros(daySpent), money.Micros(dayReserved)
	return u, nil
}
