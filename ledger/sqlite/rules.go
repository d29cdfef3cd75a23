package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// sqliteKeyRules are a key's stateful rules as Reserve reads them (see
// migration 0007), with what the key has counted against max_calls.
type sqliteKeyRules struct {
	maxCalls, rateCalls, rateWindowUS sql.NullInt64
	oncePer                           string
	ruleCalls                         int64
}

// counts tells whether the key has a stateful rule, so that a forwarded
// call is counted.
func (k sqliteKeyRules) counts() bool {
	return k.maxCalls.Valid || k.rateCalls.Valid || k.oncePer != ""
}

func (k sqliteKeyRules) window() time.Duration {
	return time.Duration(k.rateWindowUS.Int64) * time.Microsecond
}

// denied decides a money-moving call's stateful rules, in the one writer's
// transaction: the rule that refuses it ("" for none) and, for rate, how
// long until the N-th newest call of the window leaves it. The order is
// Postgres's keybrake_rule_denied: once_per as the gate read it (another
// subject than the key's means a cache older than a PATCH), max_calls,
// rate, then the once_per claims.
func (k sqliteKeyRules) denied(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) (string, time.Duration, error) {
	if k.oncePer != "" && (r.OncePer != k.oncePer || len(r.OnceValues) == 0) {
		return rules.RuleOncePer, 0, nil
	}
	if k.maxCalls.Valid && k.ruleCalls >= k.maxCalls.Int64 {
		return rules.RuleMaxCalls, 0, nil
	}
	if k.rateCalls.Valid {
		// The N-th newest call of the window decides, and says when
		// there is room again: after a PATCH narrowed N the window may
		// hold more than N, and its oldest leaving frees nothing.
		var nth int64
		err := tx.QueryRowContext(ctx, `SELECT at FROM key_rate_log WHERE key_id = +? AND at > +?
			ORDER BY at DESC LIMIT 1 OFFSET ?`,
			r.KeyID, sqliteTime(r.Now.Add(-k.window())), k.rateCalls.Int64-1).Scan(&nth)
		switch {
		case err == nil:
			wait := sqliteFromNanos(nth).Add(k.window()).Sub(r.Now)
			return rules.RuleRate, max(wait, time.Microsecond), nil
		case !errors.Is(err, sql.ErrNoRows):
			return "", 0, err
		}
	}
	if k.oncePer != "" {
		values, _ := json.Marshal(r.OnceValues) // strings always marshal
		var claimed bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM key_claims
			WHERE key_id = +? AND value IN (SELECT value FROM json_each(?)))`, r.KeyID, string(values)).Scan(&claimed); err != nil {
			return "", 0, err
		}
		if claimed {
			return rules.RuleOncePer, 0, nil
		}
	}
	return "", 0, nil
}

// take counts a forwarded call against the key's stateful rules: one more
// call for max_calls, its once_per claims, its rate slot (pruning the slots
// that left the window).
func (k sqliteKeyRules) take(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) error {
	if _, err := tx.ExecContext(ctx, `UPDATE keys SET rule_calls = rule_calls + 1 WHERE id = ?`, r.KeyID); err != nil {
		return err
	}
	if k.oncePer != "" {
		for _, v := range r.OnceValues {
			if _, err := tx.ExecContext(ctx, `INSERT INTO key_claims (key_id, value, call_id) VALUES (?, ?, ?)`,
				r.KeyID, v, r.CallID); err != nil {
				return err
			}
		}
	}
	if k.rateCalls.Valid {
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_rate_log WHERE key_id = +? AND at <= +?`,
			r.KeyID, sqliteTime(r.Now.Add(-k.window()))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_rate_log (key_id, at, call_id) VALUES (?, ?, ?)`,
			r.KeyID, sqliteTime(r.Now), r.CallID); err != nil {
			return err
		}
	}
	return nil
}
