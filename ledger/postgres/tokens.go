package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// postgresTokenColumns are read by scanPostgresToken, in this order, from
// api_tokens t LEFT JOIN token_days d (the day row of the day asked about).
const postgresTokenColumns = `t.id, t.hash, t.name, t.role, t.policy, t.daily_cap, t.total_cap,
	t.created_at, t.revoked_at, t.spent, t.reserved, coalesce(d.spent, 0), coalesce(d.reserved, 0)`

const postgresTokenFrom = `api_tokens t LEFT JOIN token_days d ON d.token_id = t.id AND d.day = $1`

// CreateToken stores a new API token.
func (s *postgresStore) CreateToken(ctx context.Context, t ledger.Token) error {
	var policy any
	if len(t.Policy) > 0 {
		policy = string(t.Policy)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO api_tokens
		(id, hash, name, role, policy, daily_cap, total_cap, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.Hash[:], t.Name, t.Role, policy, microsPtr(t.DailyCap), microsPtr(t.TotalCap),
		t.CreatedAt, t.RevokedAt)
	return s.wrapErr("creating token", err)
}

// TokenByHash finds a token by the hash of its secret.
func (s *postgresStore) TokenByHash(ctx context.Context, h ledger.Hash) (ledger.Token, error) {
	u, err := scanPostgresToken(s.pool.QueryRow(ctx,
		`SELECT `+postgresTokenColumns+` FROM `+postgresTokenFrom+` WHERE t.hash = $2`, ledger.Day(time.Time{}), h[:]))
	return u.Token, s.wrapErr("finding token by hash", err)
}

// GetToken returns a token with its budget usage on now's UTC day.
func (s *postgresStore) GetToken(ctx context.Context, id string, now time.Time) (ledger.TokenUsage, error) {
	u, err := scanPostgresToken(s.pool.QueryRow(ctx,
		`SELECT `+postgresTokenColumns+` FROM `+postgresTokenFrom+` WHERE t.id = $2`, ledger.Day(now), id))
	return u, s.wrapErr("getting token", err)
}

// ListTokens lists every token, newest first.
func (s *postgresStore) ListTokens(ctx context.Context, now time.Time) ([]ledger.TokenUsage, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+postgresTokenColumns+` FROM `+postgresTokenFrom+
		` ORDER BY t.created_at DESC, t.id DESC`, ledger.Day(now))
	if err != nil {
		return nil, s.wrapErr("listing tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.TokenUsage, error) { return scanPostgresToken(r) })
	return out, s.wrapErr("listing tokens", err)
}

// RevokeToken sets revoked_at once.
func (s *postgresStore) RevokeToken(ctx context.Context, id string, now time.Time) (ledger.Token, error) {
	u, err := scanPostgresToken(s.pool.QueryRow(ctx, `WITH t AS (
			UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $3) WHERE id = $2 RETURNING *
		)
		SELECT `+postgresTokenColumns+` FROM t LEFT JOIN token_days d ON d.token_id = t.id AND d.day = $1`,
		ledger.Day(now), id, now))
	return u.Token, s.wrapErr("revoking token", err)
}

// RevokeKeys revokes the keys f selects in one statement that also tells
// every node about each of them. The keys are locked in id order, so two
// revocations of overlapping sets cannot deadlock.
func (s *postgresStore) RevokeKeys(ctx context.Context, f ledger.RevokeFilter, now time.Time) ([]string, error) {
	args := []any{now}
	var where []string
	if f.RunLabel != "" {
		args = append(args, f.RunLabel)
		where = append(where, fmt.Sprintf("run_label = $%d", len(args)))
	}
	if f.TokenID != "" {
		args = append(args, f.TokenID)
		where = append(where, fmt.Sprintf("token_id = $%d", len(args)))
	}
	if len(where) == 0 {
		return nil, errors.New("revoking keys: no filter")
	}
	rows, err := s.pool.Query(ctx, `WITH sel AS (
			SELECT id FROM vault_keys WHERE revoked_at IS NULL AND `+strings.Join(where, " AND ")+`
			ORDER BY id FOR NO KEY UPDATE
		), k AS (
			UPDATE vault_keys v SET revoked_at = $1 FROM sel WHERE v.id = sel.id RETURNING v.id
		)
		SELECT k.id FROM k, pg_notify('`+postgresKeysChannel+`', k.id) AS n ORDER BY k.id`, args...)
	if err != nil {
		return nil, s.wrapErr("revoking keys", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, s.wrapErr("revoking keys", err)
}

// PatchKey changes the set fields of p and tells every node, in one
// statement.
func (s *postgresStore) PatchKey(ctx context.Context, id string, p ledger.KeyPatch) (ledger.Key, error) {
	var endpoints any // NULL: unchanged
	if p.AllowedEndpoints != nil {
		endpoints = p.AllowedEndpoints
	}
	setRules := p.Rules != nil
	rs := ledger.StoreRules(p.Rules)
	setApproval, approval := p.ApprovalChange()
	row := s.pool.QueryRow(ctx, `WITH k AS (
			UPDATE vault_keys SET
				daily_cap = coalesce($2, daily_cap),
				total_cap = coalesce($3, total_cap),
				expires_at = coalesce($4, expires_at),
				allowed_endpoints = coalesce($5::text[], allowed_endpoints),
				rules = CASE WHEN $6 THEN $7 ELSE rules END,
				max_calls = CASE WHEN $6 THEN $8 ELSE max_calls END,
				rate_calls = CASE WHEN $6 THEN $9 ELSE rate_calls END,
				rate_window_us = CASE WHEN $6 THEN $10 ELSE rate_window_us END,
				once_per = CASE WHEN $6 THEN $11 ELSE once_per END,
				approval = CASE WHEN $12 THEN $13 ELSE approval END
			WHERE id = $1
			RETURNING *
		)
		SELECT `+postgresKeyColumns+` FROM k, pg_notify('`+postgresKeysChannel+`', k.id) AS n`,
		id, microsPtr(p.DailyCap), microsPtr(p.TotalCap), p.ExpiresAt, endpoints,
		setRules, rs.JSON, rs.MaxCalls, rs.RateCalls, rs.RateWindowUS, rs.OncePer, setApproval, approval)
	k, err := scanPostgresKey(row)
	return k, s.wrapErr("patching key", err)
}

// scanPostgresToken reads postgresTokenColumns.
func scanPostgresToken(row pgx.Row) (ledger.TokenUsage, error) {
	var u ledger.TokenUsage
	var hash, policy []byte
	var daily, total *int64
	var spent, reserved, daySpent, dayReserved int64
	if err := row.Scan(&u.ID, &hash, &u.Name, &u.Role, &policy, &daily, &total,
		&u.CreatedAt, &u.RevokedAt, &spent, &reserved, &daySpent, &dayReserved); err != nil {
		return ledger.TokenUsage{}, err
	}
	copy(u.Hash[:], hash)
	if len(policy) > 0 {
		u.Policy = policy
	}
	if daily != nil {
		m := money.Micros(*daily)
		u.DailyCap = &m
	}
	if total != nil {
		m := money.Micros(*total)
		u.TotalCap = &m
	}
	u.CreatedAt = u.CreatedAt.UTC()
	if u.RevokedAt != nil {
		t := u.RevokedAt.UTC()
		u.RevokedAt = &t
	}
	u.Spent, u.Reserved = money.Micros(spent), money.Micros(reserved)
	u.DaySpent, u.DayReserved = money.Micros(daySpent), money.Micros(dayReserved)
	return u, nil
}
