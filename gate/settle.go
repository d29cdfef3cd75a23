package gate

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/vendors"
)

// finishReplay is the finish of an idempotent replay: it reserved nothing
// and costs nothing, and its row is final as Reserve wrote it (the original
// settles itself; an original whose outcome was ambiguous is never
// replayed). Nothing is written, so it never reaches the ledger.
const finishReplay ledger.FinishMode = "replay"

// settle turns the vendor's answer into a ledger settlement. It runs after
// the client has its response, on a context that outlives the request, so a
// client hanging up cannot leave the ledger unsettled. With
// SettleAfterResponse the settlement is queued for the ledger's next batch
// and what follows its commit (log, metrics, alerts) runs then.
func (g *Gate) settle(r *http.Request, c *call) {
	defer func() {
		if c.settleQueued != nil {
			c.settleQueued()
		}
	}()
	g.decide(r, c)
	ctx, cancel := g.ledgerContext(r)
	if g.settleLater != nil && c.finish != finishReplay {
		queued := c.settleQueued
		c.settleQueued = nil // held until the settlement is written
		f := ledger.Finish{CallID: c.id, Mode: c.finish, Settlement: c.settlement}
		g.finishLater(ctx, g.settleLater, f, func(err error) {
			cancel()
			if queued != nil {
				queued()
			}
			// Off the ledger's batch loop: alerts may read and write
			// the ledger.
			go g.settled(r, c, err)
		})
		return
	}
	defer cancel()
	var err error
	switch c.finish {
	case ledger.FinishSettle:
		err = g.cfg.Store.Settle(ctx, c.id, c.settlement)
	case ledger.FinishRelease:
		err = g.cfg.Store.Release(ctx, c.id, c.settlement)
	case ledger.FinishUnknown:
		err = g.cfg.Store.MarkUnknown(ctx, c.id, c.settlement)
	}
	g.settled(r, c, err)
}

// decide reads what the call came to: the vendor's decision on its answer
// (Vendor.Settle), or what the gate knows when there is none, and the
// settlement and finish that follow from it.
func (g *Gate) decide(r *http.Request, c *call) {
	s := ledger.Settlement{StatusCode: c.status, Now: g.cfg.Now()}
	switch {
	case c.nothingSent:
		// No connection ever carried the request (sendTrace): the vendor
		// cannot have acted, so the reservation goes back.
		c.result.Decision = vendors.DecisionRelease
		s.StatusCode, s.Outcome = http.StatusBadGateway, ledger.OutcomeUpstreamUnreachable
	case c.status == statusClientClosed, errors.Is(c.upstreamErr, errAborted) && c.status == 0:
		// The client left before the vendor's answer arrived: Caddy's
		// reverse_proxy answers 499 itself, or aborts the handler. The
		// vendor may have acted, so the reservation is kept.
		c.result.Decision = vendors.DecisionUnknown
		s.Outcome = ledger.OutcomeClientGone
	case c.upstreamErr != nil && c.status == 0:
		c.result.Decision = vendors.DecisionUnknown
		s.Outcome = ledger.OutcomeUpstreamError
	case c.status == 0:
		c.result.Decision = vendors.DecisionUnknown
	default:
		cw := c.response
		c.result = g.cfg.Vendor.Settle(r, c.status, cw.Header(), cw.body, c.estimate)
	}
	s.VendorTxnID, s.VendorAmount, s.VendorCurrency = c.result.TxnID, c.result.Amount, c.result.Currency
	c.finish = ledger.FinishUnknown
	switch {
	case c.reservation.Outcome == ledger.OutcomeIdempotentReplay:
		c.finish = finishReplay
	case c.result.Decision == vendors.DecisionSettle:
		s.Cost, s.CostState, c.finish = c.result.Cost, ledger.CostSettled, ledger.FinishSettle
	case c.result.Decision == vendors.DecisionUnpriced:
		s.Cost, s.CostState, c.finish = c.estimate.Cost, ledger.CostUnpriced, ledger.FinishSettle
	case c.result.Decision == vendors.DecisionRelease:
		c.finish = ledger.FinishRelease
	}
	c.settlement = s
}

// settleRetry is how soon a settlement the ledger could not take is queued
// again.
const settleRetry = 200 * time.Millisecond

// finishLater queues a settlement for the ledger's next batch, and queues
// it again while the ledger is unreachable, until ctx's deadline: a
// settlement that follows the answer must not be lost to a short outage
// (it would leave the call reserved for the reconciler). then gets the
// last result.
func (g *Gate) finishLater(ctx context.Context, b ledger.Batcher, f ledger.Finish, then func(error)) {
	b.FinishLater(ctx, f, func(err error) {
		if errors.Is(err, ledger.ErrUnavailable) && !errors.Is(err, ledger.ErrClosed) && ctx.Err() == nil {
			time.AfterFunc(settleRetry, func() { g.finishLater(ctx, b, f, then) })
			return
		}
		then(err)
	})
}

// settled logs and observes a call once its settlement is written (or
// failed: err), then tells the alerter.
func (g *Gate) settled(r *http.Request, c *call, err error) {
	s := c.settlement
	took := s.Now.Sub(c.started)
	fields := []zap.Field{
		zap.String("call_id", c.id),
		zap.String("key_id", c.key.ID),
		zap.String("agent_run_label", c.key.RunLabel),
		zap.String("vendor", g.cfg.Vendor.Name()),
		zap.String("method", r.Method),
		zap.String("path", c.recorded),
		zap.String("endpoint", c.endpoint),
		zap.Int("status", c.status),
		zap.String("outcome", c.reservation.Outcome),
		zap.String("decision", string(c.result.Decision)),
		zap.String("reserved_usd", c.estimate.Cost.String()),
		zap.String("cost_usd", s.Cost.String()),
		zap.String("vendor_txn_id", c.result.TxnID),
		zap.Duration("duration", took),
	}
	if c.upstreamErr != nil {
		fields = append(fields, zap.NamedError("upstream_error", c.upstreamErr))
	}
	g.observe(Event{Vendor: g.cfg.Vendor.Name(), Outcome: c.reservation.Outcome, Decision: string(c.result.Decision),
		Status: c.status, Reserved: c.estimate.Cost, Cost: s.Cost, Duration: took, LedgerError: err != nil})
	if err != nil {
		// The reservation stays held: the ledger errs on the side of the
		// cap, and the reconciler settles it later.
		g.log.Error("settling call", append(fields, zap.Error(err))...)
		return
	}
	g.log.Info("vendor call", fields...)
	if g.cfg.Alerts == nil {
		return
	}
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	g.alert(ctx, r, c)
}

// alert tells the alerter what a settled call may have raised: a cap's
// threshold crossed (read from the key only when the reservation's
// headroom says one may have been), or an unknown outcome.
func (g *Gate) alert(ctx context.Context, r *http.Request, c *call) {
	a, res, s := g.cfg.Alerts, c.reservation, c.settlement
	switch {
	case c.finish == finishReplay:
	case c.result.Decision == vendors.DecisionSettle, c.result.Decision == vendors.DecisionUnpriced:
		headroom := res.Remaining - max(0, s.Cost-res.Reserved)
		if s.Cost > 0 && a.MayCross(c.key, headroom) {
			a.KeySpent(ctx, c.key.ID, s.Now)
		}
		if s.Cost > 0 && c.key.TokenID != "" && a.WantsBudgets() {
			// A token's budget spans keys on every node: this call's
			// headroom says nothing about it, so the token is read.
			a.TokenSpent(ctx, c.key.TokenID, s.Now)
		}
	case c.result.Decision == vendors.DecisionRelease:
	default:
		a.CallUnknown(ctx, alerts.CallUnknownData{
			CallID: c.id, KeyID: c.key.ID, RunLabel: c.key.RunLabel, Vendor: g.cfg.Vendor.Name(),
			Method: r.Method, Path: c.recorded, Outcome: cmp.Or(s.Outcome, res.Outcome), StatusCode: s.StatusCode, ReservedUSD: res.Reserved,
		}, s.Now)
	}
}
