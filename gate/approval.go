package gate

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/randid"
	"github.com/keybrake/keybrake/ledger"
)

// HeaderApprovalID names the approval a call waits for, on the
// keybrake_approval_pending refusal: a retry of the same request after it
// is approved goes through once.
const HeaderApprovalID = "X-Keybrake-Approval-Id"

// approval holds a call estimated above its key's approval threshold for a
// person's decision. The call has reserved its cost, so while it waits the
// caps count it. A retry of a request approved after its wait ended
// consumes that approval and goes on at once; otherwise an approval is
// recorded (durable, approval.requested is sent) and the call waits up to
// the rule's wait: approved, it goes on to be forwarded; denied or
// undecided, it is refused and its reservation released (release).
func (g *Gate) approval(r *http.Request, c *call) *refusal {
	rule := c.key.Approval
	if !rule.Needs(c.estimate.Cost) || c.reservation.Outcome == ledger.OutcomeIdempotentReplay {
		return nil
	}
	if g.cfg.Approvals == nil {
		g.log.Error("a key asks for approvals but this gate has none", zap.String("call_id", c.id))
		return unavailable()
	}
	store := g.cfg.Approvals.store
	hash := ledger.RequestHash(r.Method, c.path, c.body)
	ctx, cancel := g.ledgerContext(r)
	a, err := store.ConsumeApproval(ctx, "", c.key.ID, hash, c.id, g.cfg.Now())
	cancel()
	switch {
	case err == nil:
		g.log.Info("call approved earlier goes through", zap.String("call_id", c.id),
			zap.String("approval_id", a.ID), zap.String("decided_by", a.DecidedBy))
		return nil
	case !errors.Is(err, ledger.ErrNotFound):
		g.log.Error("consuming an approval", zap.String("call_id", c.id), zap.Error(err))
		return unavailable()
	}
	now := g.cfg.Now()
	a = ledger.Approval{
		ID: newApprovalID(), KeyID: c.key.ID, TokenID: c.key.TokenID, RunLabel: c.key.RunLabel,
		Vendor: g.cfg.Vendor.Name(), Method: r.Method, Path: c.recorded, Endpoint: c.endpoint,
		Subjects: c.estimate.Object, Estimate: c.estimate.Cost, RequestHash: hash, CallID: c.id,
		Status: ledger.ApprovalPending, RequestedAt: now, ExpiresAt: now.Add(approvalTTL(rule)),
	}
	ctx, cancel = g.ledgerContext(r)
	defer cancel()
	if err := store.CreateApproval(ctx, a); err != nil {
		g.log.Error("recording an approval", zap.String("call_id", c.id), zap.Error(err))
		return unavailable()
	}
	g.cfg.Alerts.ApprovalRequested(ctx, a, now)
	g.log.Info("call held for approval", zap.String("call_id", c.id), zap.String("approval_id", a.ID),
		zap.String("key_id", c.key.ID), zap.String("agent_run_label", c.key.RunLabel),
		zap.String("estimate_usd", c.estimate.Cost.Dollars()), zap.Duration("wait", approvalWait(rule)))
	return g.hold(r, c, a, approvalWait(rule))
}

// hold waits for the decision on a: a channel woken by the ledger's
// notifications, a timer for the wait, the client's going, the gate's
// shutdown. Whatever ends the wait, the approval is read once more, so a
// decision made as it ended still counts.
func (g *Gate) hold(r *http.Request, c *call, a ledger.Approval, wait time.Duration) *refusal {
	g.stopWithServer(r)
	woken, unregister := g.cfg.Approvals.register(a.ID)
	defer unregister()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		// Read first: the decision may have come before register.
		if f, done := g.decided(r, c, a); done {
			return f
		}
		select {
		case <-woken:
			continue
		case <-timer.C:
		case <-g.stopping:
		case <-r.Context().Done():
			return clientGone()
		}
		if f, done := g.decided(r, c, a); done {
			return f
		}
		g.log.Info("approval not decided in time", zap.String("call_id", c.id), zap.String("approval_id", a.ID),
			zap.Duration("waited", g.cfg.Now().Sub(a.RequestedAt)))
		return approvalPending(a.ID)
	}
}

// decided looks at approval a: approved, it is consumed by this call
// (nil, true); denied, the refusal; still pending, done is false. The
// consume comes first, so an approval costs the held call one round trip
// to the ledger before it is forwarded.
func (g *Gate) decided(r *http.Request, c *call, a ledger.Approval) (*refusal, bool) {
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	store := g.cfg.Approvals.store
	got, err := store.ConsumeApproval(ctx, a.ID, a.KeyID, a.RequestHash, c.id, g.cfg.Now())
	if err == nil {
		g.log.Info("call approved", zap.String("call_id", c.id), zap.String("approval_id", a.ID),
			zap.String("decided_by", got.DecidedBy), zap.Duration("waited", g.cfg.Now().Sub(a.RequestedAt)))
		return nil, true
	}
	if errors.Is(err, ledger.ErrNotFound) {
		got, err = store.GetApproval(ctx, a.ID)
	}
	if err != nil {
		g.log.Error("reading an approval", zap.String("call_id", c.id), zap.Error(err))
		return unavailable(), true
	}
	switch got.Status {
	case ledger.ApprovalPending:
		return nil, false
	case ledger.ApprovalDenied:
		g.log.Info("call denied", zap.String("call_id", c.id), zap.String("approval_id", a.ID),
			zap.String("decided_by", got.DecidedBy), zap.Duration("waited", g.cfg.Now().Sub(a.RequestedAt)))
		return approvalDenied(got), true
	}
	// Consumed by a retry that raced this call, expired, or its key
	// revoked meanwhile: this call has no approval left to use.
	return approvalPending(a.ID), true
}

// Shutdown answers every call this gate holds for approval with the
// pending refusal at once (their approvals stay, for a retry), and every
// later one without waiting. Safe to call more than once.
func (g *Gate) Shutdown() {
	g.stopOnce.Do(func() { close(g.stopping) })
}

// stopWithServer makes the shutdown of the net/http server serving r
// (Caddy stopping, or a reload retiring this config) call Shutdown, once
// per server: a graceful shutdown waits for held calls, so they must stop
// holding when it begins, not when their wait ends.
func (g *Gate) stopWithServer(r *http.Request) {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	if _, seen := g.servers.LoadOrStore(srv, struct{}{}); !seen {
		srv.RegisterOnShutdown(g.Shutdown)
	}
}

func approvalWait(rule *ledger.ApprovalRule) time.Duration {
	switch {
	case rule.Wait <= 0:
		return ledger.DefaultApprovalWait
	case rule.Wait > ledger.MaxApprovalWait:
		return ledger.MaxApprovalWait
	}
	return rule.Wait
}

func approvalTTL(rule *ledger.ApprovalRule) time.Duration {
	if rule.TTL <= 0 {
		return ledger.DefaultApprovalTTL
	}
	return rule.TTL
}

// newApprovalID returns "ap" and 22 random base62 characters.
func newApprovalID() string {
	return "ap" + randid.Base62(22)
}
