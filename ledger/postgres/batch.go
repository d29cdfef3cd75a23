package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keybrake/keybrake/ledger"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/money"
)

// postgresCloseDrain bounds how long Close waits for queued writes.
const postgresCloseDrain = 10 * time.Second

// Interface guard.
var _ ledger.Batcher = (*postgresStore)(nil)

// Reserve queues the reservation for the node's next batch (see
// runBatch) and returns once that batch has committed: the reservation and
// the call record are durable before the vendor is called.
func (s *postgresStore) Reserve(ctx context.Context, r ledger.ReserveRequest) (ledger.ReserveResult, error) {
	return s.Coalescer.Do(ctx, ledger.Op{Reserve: &r})
}

// finish queues a settlement, release or unknown for the next batch and
// waits for it.
func (s *postgresStore) finish(ctx context.Context, _, callID string, mode ledger.FinishMode, state string, st ledger.Settlement) error {
	st.CostState = state
	_, err := s.Coalescer.Do(ctx, ledger.Op{Finish: &ledger.Finish{CallID: callID, Mode: mode, Settlement: st}})
	return err
}

// checkFinish refuses a settlement the ledger cannot record.
func checkFinish(mode ledger.FinishMode, state string, st ledger.Settlement) error {
	if mode != ledger.FinishSettle {
		return nil
	}
	if state != ledger.CostSettled && state != ledger.CostUnpriced {
		return fmt.Errorf("settling call: cost state %q is neither %s nor %s", state, ledger.CostSettled, ledger.CostUnpriced)
	}
	if st.Cost < 0 {
		return fmt.Errorf("settling call: negative cost %s", st.Cost)
	}
	return nil
}

// finishArgs are the operation name and the state keybrake_finish takes
// for a finish.
func finishArgs(f ledger.Finish) (op, state string) {
	switch f.Mode {
	case ledger.FinishSettle:
		return "settling call", cmp.Or(f.Settlement.CostState, ledger.CostSettled)
	case ledger.FinishRelease:
		return "releasing call", ledger.CostReleased
	default:
		return "marking call cost unknown", ledger.CostUnknown
	}
}

// finishOne is finishAlone for a Finish.
func (s *postgresStore) finishOne(ctx context.Context, f ledger.Finish) error {
	op, state := finishArgs(f)
	return s.finishAlone(ctx, op, f.CallID, f.Mode, state, f.Settlement)
}

// postgresText tells whether every string can go to Postgres as text: valid
// UTF-8 with no NUL byte. A batch carries only such ops; any other runs
// alone, so that the server's refusal fails that op only.
func postgresText(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return false
		}
	}
	return true
}

// batchable tells whether op can go in a batch: arguments the ledger
// accepts, in strings Postgres takes.
func batchable(op ledger.Op) bool {
	if r := op.Reserve; r != nil {
		return r.CallID != "" && r.Estimate >= 0 && r.Minimum >= 0 &&
			postgresText(r.CallID, r.KeyID, r.Vendor, r.Method, r.Path, r.Endpoint, r.IdempotencyKey, r.Fingerprint, r.Object, r.Tag, r.OncePer) &&
			postgresText(r.OnceValues...)
	}
	f := op.Finish
	_, state := finishArgs(*f)
	st := f.Settlement
	return checkFinish(f.Mode, state, st) == nil && (f.Mode == ledger.FinishSettle || f.Mode == ledger.FinishRelease || f.Mode == ledger.FinishUnknown) &&
		postgresText(f.CallID, st.VendorCurrency, st.VendorTxnID, st.Outcome)
}

// postgresBatchArgs are keybrake_batch's arrays, one element per op.
type postgresBatchArgs struct {
	fIdx, rIdx []int // the ops' positions in the batch

	fCallIDs, fModes, fStates, fCurrencies, fTxnIDs, fOutcomes []string
	fCosts                                                     []int64
	fStatuses                                                  []int32
	fAmounts                                                   []*int64
	fNows                                                      []time.Time

	rCallIDs, rKeyIDs, rVendors, rMethods, rPaths, rEndpoints, rIdems, rPrints, rObjects []string
	rEstimates, rMinimums, rWindows                                                      []int64
	rNows                                                                                []time.Time
	rMoves                                                                               []bool
	rOnces, rClaims, rTags                                                               []string
}

func (a *postgresBatchArgs) add(i int, op ledger.Op) {
	if r := op.Reserve; r != nil {
		a.rIdx = append(a.rIdx, i)
		a.rCallIDs = append(a.rCallIDs, r.CallID)
		a.rKeyIDs = append(a.rKeyIDs, r.KeyID)
		a.rVendors = append(a.rVendors, r.Vendor)
		a.rMethods = append(a.rMethods, r.Method)
		a.rPaths = append(a.rPaths, r.Path)
		a.rEndpoints = append(a.rEndpoints, r.Endpoint)
		a.rEstimates = append(a.rEstimates, int64(r.Estimate))
		a.rMinimums = append(a.rMinimums, int64(r.Minimum))
		a.rIdems = append(a.rIdems, r.IdempotencyKey)
		a.rPrints = append(a.rPrints, r.Fingerprint)
		a.rWindows = append(a.rWindows, r.ReplayWindow.Microseconds())
		a.rObjects = append(a.rObjects, r.Object)
		a.rNows = append(a.rNows, r.Now)
		a.rMoves = append(a.rMoves, r.MovesMoney)
		a.rOnces = append(a.rOnces, r.OncePer)
		a.rClaims = append(a.rClaims, claimsJSON(r.OnceValues))
		a.rTags = append(a.rTags, r.Tag)
		return
	}
	f := op.Finish
	_, state := finishArgs(*f)
	st := f.Settlement
	a.fIdx = append(a.fIdx, i)
	a.fCallIDs = append(a.fCallIDs, f.CallID)
	a.fModes = append(a.fModes, string(f.Mode))
	a.fCosts = append(a.fCosts, int64(st.Cost))
	a.fStates = append(a.fStates, state)
	a.fStatuses = append(a.fStatuses, int32(st.StatusCode))
	a.fAmounts = append(a.fAmounts, st.VendorAmount)
	a.fCurrencies = append(a.fCurrencies, st.VendorCurrency)
	a.fTxnIDs = append(a.fTxnIDs, st.VendorTxnID)
	a.fOutcomes = append(a.fOutcomes, st.Outcome)
	a.fNows = append(a.fNows, st.Now)
}

// runBatch writes a batch in one call of keybrake_batch (migration 0008):
// one round trip and one transaction. Should the transaction fail for a
// reason other than an outage, every op is written again on its own, so
// one bad op cannot fail the others; an outage fails them all (the gate
// answers 503).
func (s *postgresStore) runBatch(ctx context.Context, ops []ledger.Op) ([]ledger.ReserveResult, []error) {
	if len(ops) == 1 && !s.alwaysBatch {
		// A lone op (one connection, or a quiet node) has no one to share
		// its commit with: keybrake_reserve or keybrake_finish alone does
		// the same with less work, and takes its locks in the same order.
		return ledger.RunAlone(ctx, ops, s.reserveAlone, s.finishOne)
	}
	results := make([]ledger.ReserveResult, len(ops))
	errs := make([]error, len(ops))
	a := &postgresBatchArgs{}
	var alone []int
	for i, op := range ops {
		if batchable(op) {
			a.add(i, op)
		} else {
			alone = append(alone, i)
		}
	}
	if len(a.fIdx)+len(a.rIdx) > 0 {
		if err := s.writeBatch(ctx, a, results, errs); err != nil {
			err = s.wrapErr("writing a batch of ledger writes", err)
			if errors.Is(err, ledger.ErrUnavailable) {
				return ledger.FailAll(ops, err)
			}
			s.fallbacks.Add(1)
			s.logger.Warn("ledger batch failed; writing its ops one by one", zap.Int("ops", len(ops)), zap.Error(err))
			return ledger.RunAlone(ctx, ops, s.reserveAlone, s.finishOne)
		}
	}
	for _, i := range alone {
		if op := ops[i]; op.Reserve != nil {
			results[i], errs[i] = s.reserveAlone(ctx, *op.Reserve)
		} else {
			errs[i] = s.finishOne(ctx, *op.Finish)
		}
	}
	return results, errs
}

// writeBatch runs keybrake_batch and fills results and errs for its ops.
// The tags of its calls are written by the function (migration 0017).
func (s *postgresStore) writeBatch(ctx context.Context, a *postgresBatchArgs, results []ledger.ReserveResult, errs []error) error {
	rows, err := s.pool.Query(ctx, `SELECT o_kind, o_idx, o_outcome, o_replay_of, o_run_label, o_remaining, o_held, o_state,
			o_rule, o_retry_us, o_tag
		FROM keybrake_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
			$24, $25, $26, $27)`,
		nonNil(a.fCallIDs), nonNil(a.fModes), nonNil(a.fCosts), nonNil(a.fStates), nonNil(a.fStatuses), nonNil(a.fAmounts),
		nonNil(a.fCurrencies), nonNil(a.fTxnIDs), nonNil(a.fOutcomes), nonNil(a.fNows),
		nonNil(a.rCallIDs), nonNil(a.rKeyIDs), nonNil(a.rVendors), nonNil(a.rMethods), nonNil(a.rPaths), nonNil(a.rEndpoints),
		nonNil(a.rEstimates), nonNil(a.rMinimums), nonNil(a.rIdems), nonNil(a.rPrints), nonNil(a.rWindows), nonNil(a.rObjects),
		nonNil(a.rNows), nonNil(a.rMoves), nonNil(a.rOnces), nonNil(a.rClaims), nonNil(a.rTags))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind, outcome, replayOf, runLabel, state, rule, tag string
			idx                                                 int32
			remaining, held, retryUS                            int64
		)
		if err := rows.Scan(&kind, &idx, &outcome, &replayOf, &runLabel, &remaining, &held, &state, &rule, &retryUS, &tag); err != nil {
			return err
		}
		if kind == "finish" {
			i := a.fIdx[idx-1]
			switch {
			case state == "not_found":
				op, _ := finishArgs(ledger.Finish{Mode: ledger.FinishMode(a.fModes[idx-1])})
				errs[i] = fmt.Errorf("%s: %w", op, ledger.ErrNotFound)
			case state == "":
				s.logger.Debug("call no longer open; settlement ignored",
					zap.String("call_id", a.fCallIDs[idx-1]), zap.String("mode", a.fModes[idx-1]))
			}
			continue
		}
		i := a.rIdx[idx-1]
		if outcome == "not_found" {
			errs[i] = fmt.Errorf("reserving cost: %w", ledger.ErrNotFound)
			continue
		}
		results[i] = ledger.ReserveResult{Outcome: outcome, ReplayOf: replayOf, RunLabel: runLabel,
			Remaining: money.Micros(remaining), Reserved: money.Micros(held), Rule: rule, RetryAfter: ledger.RetryAfterUS(retryUS),
			Tag: tag}
	}
	return rows.Err()
}

// nonNil gives pgx an empty array rather than NULL for an empty slice.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
