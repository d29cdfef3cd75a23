package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/money"
)

// reserveAlone runs keybrake_reserve in a transaction of its own: one round
// trip that locks the key row, checks vendor, revocation, expiry,
// idempotent replay and both caps, holds the estimate and writes the call
// record, committed before it returns. Reserve batches it (postgres_batch.go).
func (s *postgresStore) reserveAlone(ctx context.Context, r ledger.ReserveRequest) (ledger.ReserveResult, error) {
	if r.CallID == "" {
		return ledger.ReserveResult{}, errors.New("reserving cost: empty call id")
	}
	if r.Estimate < 0 {
		return ledger.ReserveResult{}, fmt.Errorf("reserving cost: negative estimate %s", r.Estimate)
	}
	if r.Minimum < 0 {
		return ledger.ReserveResult{}, fmt.Errorf("reserving cost: negative minimum %s", r.Minimum)
	}
	var res ledger.ReserveResult
	var remaining, held, retryUS int64
	const reserveSQL = `SELECT outcome, replay_of, run_label, remaining, held, rule, retry_us
		 FROM keybrake_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`
	args := []any{r.CallID, r.KeyID, r.Vendor, r.Method, r.Path, r.Endpoint,
		int64(r.Estimate), int64(r.Minimum), r.IdempotencyKey, r.Fingerprint, r.ReplayWindow.Microseconds(),
		r.Object, r.Now, r.MovesMoney, r.OncePer, claimsJSON(r.OnceValues)}
	scan := []any{&res.Outcome, &res.ReplayOf, &res.RunLabel, &remaining, &held, &res.Rule, &retryUS}
	var err error
	if r.Tag == "" {
		err = s.pool.QueryRow(ctx, reserveSQL, args...).Scan(scan...)
	} else {
		// The tag is written in the reservation's transaction (one
		// pipelined batch is one implicit transaction): one commit.
		b := &pgx.Batch{}
		b.Queue(reserveSQL, args...)
		queueTag(b, r)
		err = func() error {
			br := s.pool.SendBatch(ctx, b)
			defer br.Close()
			if err := br.QueryRow().Scan(scan...); err != nil {
				return err
			}
			var err error
			res.Tag, err = readTag(br)
			return err
		}()
	}
	if err != nil {
		return ledger.ReserveResult{}, s.wrapErr("reserving cost", err)
	}
	res.Remaining = money.Micros(remaining)
	res.Reserved = money.Micros(held)
	res.RetryAfter = ledger.RetryAfterUS(retryUS)
	return res, nil
}

// claimsJSON is a call's once_per values as the ledger's functions take
// them: a JSON array ("" for none).
func claimsJSON(values []string) string {
	if len(values) == 0 {
		return ""
	}
	b, _ := json.Marshal(values) // strings always marshal
	return string(b)
}

// Settle replaces a call's reservation with its real cost.
func (s *postgresStore) Settle(ctx context.Context, callID string, st ledger.Settlement) error {
	state := st.CostState
	if state == "" {
		state = ledger.CostSettled
	}
	return s.finish(ctx, "settling call", callID, ledger.FinishSettle, state, st)
}

// Release returns a call's reservation: the vendor moved no money.
func (s *postgresStore) Release(ctx context.Context, callID string, st ledger.Settlement) error {
	return s.finish(ctx, "releasing call", callID, ledger.FinishRelease, ledger.CostReleased, st)
}

// MarkUnknown keeps a call's reservation for reconciliation.
func (s *postgresStore) MarkUnknown(ctx context.Context, callID string, st ledger.Settlement) error {
	return s.finish(ctx, "marking call cost unknown", callID, ledger.FinishUnknown, ledger.CostUnknown, st)
}

// finishAlone runs keybrake_finish in a transaction of its own; it moves the
// counters and updates the call in one statement, and does nothing to a call
// that is no longer open. finish batches it (postgres_batch.go).
//
// Its commit does not wait for the WAL flush (synchronous_commit off for
// this transaction only). That is safe for the cap: a settlement lost in a
// crash leaves the call reserved, which still counts against the cap, and
// the reconciler finds it; the reservation itself, written before the
// vendor is called, is always a durable commit. It halves the fsyncs a
// spend call costs.
func (s *postgresStore) finishAlone(ctx context.Context, op, callID string, mode ledger.FinishMode, state string, st ledger.Settlement) error {
	if err := checkFinish(mode, state, st); err != nil {
		return err
	}
	var newState string
	err := s.pool.QueryRow(ctx,
		`SELECT keybrake_finish($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		 FROM set_config('synchronous_commit', 'off', true)`,
		callID, string(mode), int64(st.Cost), state, st.StatusCode, st.VendorAmount,
		st.VendorCurrency, st.VendorTxnID, st.Outcome, st.Now,
	).Scan(&newState)
	if err != nil {
		return s.wrapErr(op, err)
	}
	if newState == "" {
		// Expected for a retried or late settlement; worth seeing when
		// chasing a reconciliation question.
		s.logger.Debug("call no longer open; settlement ignored",
			zap.String("call_id", callID), zap.String("mode", string(mode)))
	}
	return nil
}

// RecordRefusal records a call refused before any reservation.
func (s *postgresStore) RecordRefusal(ctx context.Context, c ledger.Call) error {
	if c.CallID == "" {
		return errors.New("recording refusal: empty call id")
	}
	// The minute's first refusal of its bucket is written as it is; the
	// next ones only count into it (ledger.RefusalBucket).
	_, err := s.pool.Exec(ctx, `INSERT INTO calls AS c
		(call_id, key_id, run_label, vendor, method, path, endpoint, status_code, outcome,
		 reserved, cost, vendor_amount, vendor_currency, vendor_txn_id, idempotency_key,
		 replay_of, cost_state, day, started_at, finished_at, refusal_bucket, rule)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		ON CONFLICT (refusal_bucket) WHERE refusal_bucket IS NOT NULL DO UPDATE SET
			call_count = c.call_count + 1,
			finished_at = GREATEST(coalesce(c.finished_at, c.started_at), coalesce(EXCLUDED.finished_at, EXCLUDED.started_at))`,
		c.CallID, c.KeyID, c.RunLabel, c.Vendor, c.Method, c.Path, c.Endpoint, c.StatusCode, c.Outcome,
		c.VendorAmount, c.VendorCurrency, c.VendorTxnID, c.IdempotencyKey,
		c.ReplayOf, ledger.CostNone, ledger.Day(c.StartedAt), c.StartedAt, c.FinishedAt, ledger.RefusalBucket(c), c.Rule)
	return s.wrapErr("recording refusal", err)
}
