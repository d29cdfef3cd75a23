package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// Times are stored as unix nanoseconds and always come back in UTC.

func sqliteTime(t time.Time) int64 { return t.UnixNano() }

func sqliteFromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func sqliteFromNullNanos(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := sqliteFromNanos(n.Int64)
	return &t
}

// sqliteDay is the key_days.day value for the UTC day of t.
func sqliteDay(t time.Time) int64 { return ledger.Day(t).UnixNano() }

func sqliteNullMicros(m *money.Micros) sql.NullInt64 {
	if m == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*m), Valid: true}
}

func sqliteMicrosPtr(n sql.NullInt64) *money.Micros {
	if !n.Valid {
		return nil
	}
	m := money.Micros(n.Int64)
	return &m
}

func sqliteNullInt64(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

func sqliteNullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// sqliteKeyColumns are read by sqliteScanKey, in this order, from keys k
// LEFT JOIN key_days d (the day row of the day asked about).
const sqliteKeyColumns = `k.id, k.hash, k.vendor, k.daily_cap, k.total_cap, k.allowed_endpoints,
	k.run_label, k.metadata, k.created_at, k.expires_at, k.revoked_at,
	k.spent, k.reserved, k.calls, k.cap_hits,
	COALESCE(d.spent, 0), COALESCE(d.reserved, 0), k.token_id, k.approval, k.rules, k.rule_calls`

// sqliteKeyFrom joins each key to its day row; the day is the first argument.
// The unary plus on the day (and on the key id where a key is read on the
// spend path) keeps the bound value out of SQLite's planning: with
// sqlite_stat4 present (after an ANALYZE), a parameter compared with an
// indexed column makes SQLite prepare the statement again whenever its
// value changes, a tenth of the spend path's CPU on an analysed ledger
// (BENCHMARKS.md, "The ledger at scale"). The index is used all the same.
const sqliteKeyFrom = `keys k LEFT JOIN key_days d ON d.key_id = k.id AND d.day = +?`

type sqliteScanner interface{ Scan(dest ...any) error }

func sqliteScanKey(row sqliteScanner) (ledger.KeyUsage, error) {
	var (
		ku                  ledger.KeyUsage
		hash                []byte
		dailyCap, totalCap  sql.NullInt64
		endpoints           string
		metadata            sql.NullString
		createdAt, expires  int64
		revokedAt           sql.NullInt64
		spent, reserved     int64
		daySpent, dayReserv int64
		approval            string
		stored              string
	)
	if err := row.Scan(&ku.ID, &hash, &ku.Vendor, &dailyCap, &totalCap, &endpoints,
		&ku.RunLabel, &metadata, &createdAt, &expires, &revokedAt,
		&spent, &reserved, &ku.Calls, &ku.CapHits, &daySpent, &dayReserv, &ku.TokenID, &approval, &stored, &ku.RuleCalls); err != nil {
		return ledger.KeyUsage{}, err
	}
	if len(hash) != len(ku.Hash) {
		return ledger.KeyUsage{}, fmt.Errorf("key %s: stored hash has %d bytes", ku.ID, len(hash))
	}
	copy(ku.Hash[:], hash)
	ku.DailyCap = sqliteMicrosPtr(dailyCap)
	ku.TotalCap = sqliteMicrosPtr(totalCap)
	if err := json.Unmarshal([]byte(endpoints), &ku.AllowedEndpoints); err != nil {
		return ledger.KeyUsage{}, fmt.Errorf("key %s: reading allowed endpoints: %w", ku.ID, err)
	}
	if metadata.Valid {
		ku.Metadata = json.RawMessage(metadata.String)
	}
	ku.CreatedAt = sqliteFromNanos(createdAt)
	ku.ExpiresAt = sqliteFromNanos(expires)
	ku.RevokedAt = sqliteFromNullNanos(revokedAt)
	ku.Spent, ku.Reserved = money.Micros(spent), money.Micros(reserved)
	ku.DaySpent, ku.DayReserved = money.Micros(daySpent), money.Micros(dayReserv)
	ku.Rules = ledger.LoadRules(stored)
	ku.Approval = ledger.DecodeApprovalRule(approval)
	return ku, nil
}

// sqliteCallColumns are read by sqliteScanCall, in this order; seq comes
// last for the audit cursor.
const sqliteCallColumns = `call_id, key_id, run_label, vendor, method, path, endpoint,
	status_code, outcome, reserved, cost, vendor_amount, vendor_currency, vendor_txn_id,
	idempotency_key, replay_of, cost_state, tag, started_at, finished_at,
	resolved_by, resolved_at, resolve_reason, call_count, rule, seq`

func sqliteScanCall(row sqliteScanner) (ledger.Call, int64, error) {
	var (
		c              ledger.Call
		keyID          sql.NullString
		reserved, cost int64
		vendorAmount   sql.NullInt64
		started        int64
		finished       sql.NullInt64
		resolved       sql.NullInt64
		seq            int64
	)
	if err := row.Scan(&c.CallID, &keyID, &c.RunLabel, &c.Vendor, &c.Method, &c.Path, &c.Endpoint,
		&c.StatusCode, &c.Outcome, &reserved, &cost, &vendorAmount, &c.VendorCurrency, &c.VendorTxnID,
		&c.IdempotencyKey, &c.ReplayOf, &c.CostState, &c.Tag, &started, &finished,
		&c.ResolvedBy, &resolved, &c.ResolveReason, &c.Count, &c.Rule, &seq); err != nil {
		return ledger.Call{}, 0, err
	}
	c.KeyID = keyID.String
	c.Reserved, c.Cost = money.Micros(reserved), money.Micros(cost)
	if vendorAmount.Valid {
		v := vendorAmount.Int64
		c.VendorAmount = &v
	}
	c.StartedAt = sqliteFromNanos(started)
	c.FinishedAt = sqliteFromNullNanos(finished)
	c.ResolvedAt = sqliteFromNullNanos(resolved)
	return c, seq, nil
}

// sqliteQueryCalls reads rows selecting sqliteCallColumns and returns the
// calls with their seqs, for cursors.
func sqliteQueryCalls(rows *sql.Rows) ([]ledger.Call, []int64, error) {
	defer rows.Close()
	var calls []ledger.Call
	var seqs []int64
	for rows.Next() {
		c, seq, err := sqliteScanCall(rows)
		if err != nil {
			return nil, nil, err
		}
		calls = append(calls, c)
		seqs = append(seqs, seq)
	}
	return calls, seqs, rows.Err()
}
