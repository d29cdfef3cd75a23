package gate

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// reserve reserves the call's estimate in the ledger, which checks the key
// again (status, allowlist, caps, the issuing token's budget, idempotency)
// and writes the call's row before anything is forwarded. A refusal it
// returns has no reservation, and Reserve has recorded it (or the ledger
// failed, or no longer knows the key, and there is nothing to record in).
func (g *Gate) reserve(r *http.Request, c *call) *refusal {
	// The reservation runs on a context the client cannot cancel: a
	// reservation that commits while the gate has stopped listening would
	// otherwise be held with no one to settle it.
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	res, err := g.cfg.Store.Reserve(ctx, ledger.ReserveRequest{
		CallID:         c.id,
		KeyID:          c.key.ID,
		Vendor:         g.cfg.Vendor.Name(),
		Method:         r.Method,
		Path:           c.recorded,
		Endpoint:       c.endpoint,
		Estimate:       c.estimate.Cost,
		Minimum:        c.estimate.Minimum,
		IdempotencyKey: c.idemKey,
		Fingerprint:    c.fingerprint,
		ReplayWindow:   c.replayWindow,
		Object:         c.estimate.Object,
		MovesMoney:     c.movesMoney,
		OncePer:        c.oncePer,
		OnceValues:     c.onceValues,
		Tag:            c.tag,
		Now:            c.started,
	})
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return keyStatusRefusal("")
	case err != nil:
		g.log.Error("reserving cost", zap.String("call_id", c.id), zap.Error(err))
		return unavailable()
	}
	c.reservation = res
	switch res.Outcome {
	case ledger.OutcomeForwarded, ledger.OutcomeIdempotentReplay:
		return nil
	case ledger.OutcomeCapHit:
		g.cfg.Alerts.CapHit(ctx, c.key, c.id, c.endpoint, res.Remaining, c.started)
		return capHitRefusal(res.Remaining)
	case ledger.OutcomeEndpointDenied:
		// The allowlist as stored no longer has the entry the cached key
		// matched (a PATCH narrowed it).
		return endpointDenied(r.Method, c.path)
	case ledger.OutcomeBudgetHit:
		return budgetHitRefusal(res.Remaining)
	case ledger.OutcomeRuleDenied:
		return ledgerRuleRefusal(res)
	case ledger.OutcomeIdempotencyMismatch, ledger.OutcomeIdempotencyInFlight:
		return g.idempotencyRefusal(res.Outcome)
	default:
		return keyStatusRefusal(res.Outcome)
	}
}

// listening refuses a call whose client left while its reservation was
// made: nothing is forwarded and the reservation goes back.
func (g *Gate) listening(r *http.Request, c *call) *refusal {
	if r.Context().Err() != nil {
		return clientGone()
	}
	return nil
}
