package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// postgresKeyColumns are read by scanPostgresKey, in this order.
const postgresKeyColumns = `k.id, k.hash, k.vendor, k.daily_cap, k.total_cap, k.allowed_endpoints,
	k.run_label, k.metadata, k.created_at, k.expires_at, k.revoked_at, k.token_id, k.approval, k.rules`

// postgresUsageColumns follow postgresKeyColumns for a KeyUsage; they expect
// the key's day row joined as d.
// A key's calls are its row's count (spend calls, replays) plus its sharded
// zero-cost count (see migrations/0002_reserve.sql).
const postgresUsageColumns = `k.spent, k.reserved, coalesce(d.spent, 0), coalesce(d.reserved, 0),
	k.calls + coalesce((SELECT sum(s.calls) FROM key_call_shards s WHERE s.key_id = k.id), 0)::bigint, k.cap_hits, k.rule_calls`

// CreateKey stores a new key.
func (s *postgresStore) CreateKey(ctx context.Context, k ledger.Key) error {
	endpoints := k.AllowedEndpoints
	if endpoints == nil {
		endpoints = []string{}
	}
	var metadata any // NULL unless set
	if len(k.Metadata) > 0 {
		metadata = string(k.Metadata)
	}
	rs := ledger.StoreRules(k.Rules)
	_, err := s.pool.Exec(ctx, `INSERT INTO vault_keys
		(id, hash, vendor, daily_cap, total_cap, allowed_endpoints, run_label, metadata,
		 created_at, expires_at, revoked_at, token_id, approval, rules, max_calls, rate_calls, rate_window_us, once_per)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		k.ID, k.Hash[:], k.Vendor, microsPtr(k.DailyCap), microsPtr(k.TotalCap), endpoints,
		k.RunLabel, metadata, k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.TokenID, ledger.EncodeApprovalRule(k.Approval),
		rs.JSON, rs.MaxCalls, rs.RateCalls, rs.RateWindowUS, rs.OncePer)
	return s.wrapErr("creating key", err)
}

// KeyByHash finds a key by the hash of its secret.
func (s *postgresStore) KeyByHash(ctx context.Context, h ledger.Hash) (ledger.Key, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+postgresKeyColumns+` FROM vault_keys k WHERE k.hash = $1`, h[:])
	k, err := scanPostgresKey(row)
	return k, s.wrapErr("finding key by hash", err)
}

// GetKey returns a key with its totals, the daily ones for now's UTC day.
func (s *postgresStore) GetKey(ctx context.Context, id string, now time.Time) (ledger.KeyUsage, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+postgresKeyColumns+`, `+postgresUsageColumns+`
		FROM vault_keys k LEFT JOIN key_days d ON d.key_id = k.id AND d.day = $2
		WHERE k.id = $1`, id, ledger.Day(now))
	u, err := scanPostgresUsage(row)
	return u, s.wrapErr("getting key", err)
}

// ListKeys lists keys newest first. The cursor is the position of the last
// key returned.
func (s *postgresStore) ListKeys(ctx context.Context, f ledger.KeyFilter) ([]ledger.KeyUsage, string, error) {
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	limit, after, err := f.Page()
	if err != nil {
		return nil, "", fmt.Errorf("listing keys: %w", err)
	}
	args := []any{ledger.Day(now)}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var where []string
	if f.RunLabel != "" {
		where = append(where, "k.run_label = "+arg(f.RunLabel))
	}
	if f.Vendor != "" {
		where = append(where, "k.vendor = "+arg(f.Vendor))
	}
	if f.TokenID != "" {
		where = append(where, "k.token_id = "+arg(f.TokenID))
	}
	switch f.Status {
	case "":
	case ledger.StatusActive:
		where = append(where, "k.revoked_at IS NULL AND k.expires_at > "+arg(now))
	case ledger.StatusExpired:
		where = append(where, "k.revoked_at IS NULL AND k.expires_at <= "+arg(now))
	case ledger.StatusRevoked:
		where = append(where, "k.revoked_at IS NOT NULL")
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(k.created_at, k.id) < (%s, %s)", arg(after.CreatedAt), arg(after.ID)))
	}
	q := `SELECT ` + postgresKeyColumns + `, ` + postgresUsageColumns + `
		FROM vault_keys k LEFT JOIN key_days d ON d.key_id = k.id AND d.day = $1`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY k.created_at DESC, k.id DESC LIMIT " + arg(limit+1)

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", s.wrapErr("listing keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.KeyUsage, error) { return scanPostgresUsage(r) })
	if err != nil {
		return nil, "", s.wrapErr("listing keys", err)
	}
	keys, next := ledger.TrimPage(keys, limit, func(last int) string {
		return ledger.KeyCursor{CreatedAt: keys[last].CreatedAt, ID: keys[last].ID}.Encode()
	})
	return keys, next, nil
}

// RevokeKey sets revoked_at once and tells every node listening on
// keybrake_keys, in the same statement: the notification is delivered when
// the revocation commits, never for one that rolled back.
func (s *postgresStore) RevokeKey(ctx context.Context, id string, now time.Time) (ledger.Key, error) {
	row := s.pool.QueryRow(ctx, `WITH k AS (
			UPDATE vault_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1
			RETURNING *
		)
		SELECT `+postgresKeyColumns+` FROM k, pg_notify('keybrake_keys', k.id) AS n`, id, now)
	k, err := scanPostgresKey(row)
	return k, s.wrapErr("revoking key", err)
}

// scanPostgresKey reads postgresKeyColumns.
func scanPostgresKey(row pgx.Row) (ledger.Key, error) {
	var k ledger.Key
	var hash []byte
	var daily, total *int64
	var endpoints []string
	var metadata []byte
	var approval, stored string
	if err := row.Scan(&k.ID, &hash, &k.Vendor, &daily, &total, &endpoints,
		&k.RunLabel, &metadata, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.TokenID, &approval, &stored); err != nil {
		return ledger.Key{}, err
	}
	fillPostgresKey(&k, hash, daily, total, endpoints, metadata)
	k.Approval = ledger.DecodeApprovalRule(approval)
	k.Rules = ledger.LoadRules(stored)
	return k, nil
}

// scanPostgresUsage reads postgresKeyColumns then postgresUsageColumns.
func scanPostgresUsage(row pgx.Row) (ledger.KeyUsage, error) {
	var u ledger.KeyUsage
	var hash []byte
	var daily, total *int64
	var endpoints []string
	var metadata []byte
	var spent, reserved, daySpent, dayReserved int64
	var approval, stored string
	if err := row.Scan(&u.ID, &hash, &u.Vendor, &daily, &total, &endpoints,
		&u.RunLabel, &metadata, &u.CreatedAt, &u.ExpiresAt, &u.RevokedAt, &u.TokenID, &approval, &stored,
		&spent, &reserved, &daySpent, &dayReserved, &u.Calls, &u.CapHits, &u.RuleCalls); err != nil {
		return ledger.KeyUsage{}, err
	}
	fillPostgresKey(&u.Key, hash, daily, total, endpoints, metadata)
	u.Key.Approval = ledger.DecodeApprovalRule(approval)
	u.Rules = ledger.LoadRules(stored)
	u.Spent, u.Reserved = money.Micros(spent), money.Micros(reserved)
	u.DaySpent, u.DayReserved = money.Micros(daySpent), money.Micros(dayReserved)
	return u, nil
}

func fillPostgresKey(k *ledger.Key, hash []byte, daily, total *int64, endpoints []string, metadata []byte) {
	copy(k.Hash[:], hash)
	if daily != nil {
		m := money.Micros(*daily)
		k.DailyCap = &m
	}
	if total != nil {
		m := money.Micros(*total)
		k.TotalCap = &m
	}
	if len(endpoints) > 0 {
		k.AllowedEndpoints = endpoints
	}
	if len(metadata) > 0 {
		k.Metadata = metadata
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt = k.ExpiresAt.UTC()
	if k.RevokedAt != nil {
		t := k.RevokedAt.UTC()
		k.RevokedAt = &t
	}
}

// microsPtr turns an optional amount into an optional BIGINT.
func microsPtr(m *money.Micros) *int64 {
	if m == nil {
		return nil
	}
	v := int64(*m)
	return &v
}
