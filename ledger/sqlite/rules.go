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
// migrations 0010 and 0012), with what the key has counted against
// max_calls and the state of its rate ring: slots ever taken, and the last
// time written (unix nanoseconds).
type sqliteKeyRules struct {
	maxCalls, rateCalls, rateWindowUS sql.NullInt64
	oncePer                           string
	ruleCalls                         int64
	rateTaken                         int64
	rateLast                          sql.NullInt64
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
// rate, then the once_per claims. A value claimed by a call on the object
// this call acts on (r.Object: a confirm or capture of the intent whose
// creation claimed it) is that charge going on, not a second one, and
// does not refuse it.
func (k sqliteKeyRules) denied(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) (string, time.Duration, error) {
	if k.oncePer != "" && (r.OncePer != k.oncePer || len(r.OnceValues) == 0) {
		return rules.RuleOncePer, 0, nil
	}
	if k.maxCalls.Valid && k.ruleCalls >= k.maxCalls.Int64 {
		return rules.RuleMaxCalls, 0, nil
	}
	if k.rateCalls.Valid && k.rateTaken >= k.rateCalls.Int64 {
		// The ring is full: the slot this call would take holds the N-th
		// newest time, which decides, and says when there is room again.
		// (A full ring without it cannot happen; if it did, the call is
		// refused for a window rather than counted blind.)
		var nth int64
		err := tx.QueryRowContext(ctx, `SELECT at FROM key_rate_slots WHERE key_id = +? AND slot = +?`,
			r.KeyID, k.rateTaken%k.rateCalls.Int64).Scan(&nth)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return rules.RuleRate, k.window(), nil
		case err != nil:
			return "", 0, err
		}
		if nth > sqliteTime(r.Now.Add(-k.window())) {
			wait := sqliteFromNanos(nth).Add(k.window()).Sub(r.Now)
			return rules.RuleRate, max(wait, time.Microsecond), nil
		}
	}
	if k.oncePer != "" {
		values, _ := json.Marshal(r.OnceValues) // strings always marshal
		var claimed bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM key_claims c
			LEFT JOIN calls o ON o.call_id = c.call_id
			WHERE c.key_id = +? AND c.value IN (SELECT value FROM json_each(?))
			  AND NOT (? <> '' AND coalesce(o.vendor_txn_id, '') = ?))`,
			r.KeyID, string(values), r.Object, r.Object).Scan(&claimed); err != nil {
			return "", 0, err
		}
		if claimed {
			return rules.RuleOncePer, 0, nil
		}
	}
	return "", 0, nil
}

// take counts a forwarded call against the key's stateful rules: its
// once_per claims (a value its object's charge holds already, see denied,
// stays that call's) and its time in its rate slot (made monotonic per key,
// as Postgres's 0016 does). It returns the key's rate_last after it (NULL
// for a key without a rate); the caller writes it, one more rule call and
// one more rate slot taken with the reservation's own update of the key.
func (k sqliteKeyRules) take(ctx context.Context, tx *sqliteTx, r ledger.ReserveRequest) (sql.NullInt64, error) {
	if k.oncePer != "" {
		for _, v := range r.OnceValues {
			if _, err := tx.ExecContext(ctx, `INSERT INTO key_claims (key_id, value, call_id) VALUES (?, ?, ?)
				ON CONFLICT (key_id, value) DO NOTHING`,
				r.KeyID, v, r.CallID); err != nil {
				return sql.NullInt64{}, err
			}
		}
	}
	if !k.rateCalls.Valid {
		return sql.NullInt64{}, nil
	}
	at := sqliteTime(r.Now)
	if k.rateLast.Valid {
		at = max(at, k.rateLast.Int64)
	}
	// A key's slots are 0 .. min(rate_taken, N) - 1 (counting fills them
	// in order; a rebuild renumbers them from 0): until the ring is full
	// the slot is new, after it exists.
	slotSQL := `UPDATE key_rate_slots SET at = ? WHERE key_id = ? AND slot = ?`
	if k.rateTaken < k.rateCalls.Int64 {
		slotSQL = `INSERT INTO key_rate_slots (at, key_id, slot) VALUES (?, ?, ?)`
	}
	if _, err := tx.ExecContext(ctx, slotSQL, at, r.KeyID, k.rateTaken%k.rateCalls.Int64); err != nil {
		return sql.NullInt64{}, err
	}
	return sql.NullInt64{Int64: at, Valid: true}, nil
}

// sqliteReslotRate rebuilds a key's rate ring after a PATCH changed its N:
// the newest min(N, kept) times, renumbered oldest first, so that the next
// slot (rate_taken mod N) is again the N-th newest once the ring is full.
// A rate taken away keeps the ring as it is (calls made without a rate are
// not counted; a rate put back decides from what was kept).
func sqliteReslotRate(ctx context.Context, tx *sqliteTx, keyID string, n int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT at FROM key_rate_slots WHERE key_id = ? ORDER BY at DESC LIMIT ?`, keyID, n)
	if err != nil {
		return err
	}
	var ats []int64
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			rows.Close()
			return err
		}
		ats = append(ats, at)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM key_rate_slots WHERE key_id = ?`, keyID); err != nil {
		return err
	}
	for i := range ats {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_rate_slots (key_id, slot, at) VALUES (?, ?, ?)`,
			keyID, i, ats[len(ats)-1-i]); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE keys SET rate_taken = ? WHERE id = ?`, len(ats), keyID)
	return err
}
