package gate

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// refuse answers a refusal made before the reservation and records it when
// the key is known: refusals of unknown credentials are only logged, so
// that a flood of garbage cannot fill the ledger, and a refusal because the
// ledger failed is not written to it.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, c *call, f *refusal) {
	g.answer(w, r, c, f)
	if c.key == nil || f.outcome == outcomeLedgerUnavailable {
		return
	}
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	err := g.cfg.Store.RecordRefusal(ctx, ledger.Call{
		CallID:     c.id,
		KeyID:      c.key.ID,
		RunLabel:   c.key.RunLabel,
		Vendor:     g.cfg.Vendor.Name(),
		Method:     r.Method,
		Path:       c.pathForRecord(r),
		Endpoint:   c.endpoint,
		StatusCode: f.status,
		Outcome:    f.outcome,
		Rule:       f.rule,
		CostState:  ledger.CostNone,
		StartedAt:  c.started,
		FinishedAt: ptr(g.cfg.Now()),
	})
	if err != nil {
		g.log.Error("recording refusal", zap.String("call_id", c.id), zap.Error(err))
	}
}

// release gives back the reservation of a call refused after Reserve and
// before anything was forwarded, recording the refusal's status and
// outcome on the call's row (Reserve wrote it), then answers the refusal.
func (g *Gate) release(w http.ResponseWriter, r *http.Request, c *call, f *refusal) {
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	err := g.cfg.Store.Release(ctx, c.id, ledger.Settlement{StatusCode: f.status, Outcome: f.outcome, Now: g.cfg.Now()})
	if err != nil {
		// The reservation stays held, erring on the side of the cap.
		g.log.Error("releasing a call refused before forwarding", zap.String("call_id", c.id), zap.Error(err))
	}
	g.answer(w, r, c, f)
}

// answer writes a refusal in the vendor's format, logs and observes it. It
// records nothing: see refuse and release, and Reserve, which records the
// refusals it decides.
func (g *Gate) answer(w http.ResponseWriter, r *http.Request, c *call, f *refusal) {
	h := w.Header()
	h.Set(HeaderCallID, c.id)
	if f.capHit {
		h.Set(HeaderCapHit, "true")
	}
	if f.budget != "" {
		h.Set(HeaderBudget, f.budget)
	}
	if f.rule != "" {
		h.Set(HeaderRule, f.rule)
	}
	if f.retryAfter > 0 {
		h.Set("Retry-After", retryAfterSeconds(f.retryAfter))
	}
	if f.approvalID != "" {
		h.Set(HeaderApprovalID, f.approvalID)
	}
	g.cfg.Vendor.WriteError(w, f.vendorError())
	fields := []zap.Field{
		zap.String("call_id", c.id),
		zap.String("vendor", g.cfg.Vendor.Name()),
		zap.String("method", r.Method),
		zap.String("path", c.pathForRecord(r)),
		zap.Int("status", f.status),
		zap.String("outcome", f.outcome),
	}
	if f.rule != "" {
		fields = append(fields, zap.String("rule", f.rule))
	}
	if c.key != nil {
		fields = append(fields, zap.String("key_id", c.key.ID), zap.String("agent_run_label", c.key.RunLabel))
	}
	g.log.Info("vendor call refused", fields...)
	g.observe(Event{Vendor: g.cfg.Vendor.Name(), Outcome: f.outcome, Status: f.status,
		Duration: g.cfg.Now().Sub(c.started), LedgerError: f.status == http.StatusServiceUnavailable})
}
