package gate

import (
	"net/http"

	"go.uber.org/zap"
)

// price decides what the call may cost: priced from the request, free for
// a reason the vendor documents, or refused (the vendor refused it, or its
// cost is unknown and the unknown_cost policy is deny).
func (g *Gate) price(r *http.Request, c *call) *refusal {
	est, err := g.cfg.Vendor.Estimate(r, c.body)
	if err != nil {
		return estimateRefusal(err)
	}
	if est.Object != "" {
		// What the key has already counted for this object: only what it
		// reserved or paid through Keybrake, never a free call that saw it.
		counted, err := g.cfg.Store.ObjectExposure(r.Context(), c.key.ID, g.cfg.Vendor.Name(), est.Object)
		if err != nil {
			g.log.Error("summing object exposure", zap.String("call_id", c.id), zap.Error(err))
			return unavailable()
		}
		est.Counted = counted
		est.Cost = max(est.Exposure-counted, 0)
	}
	if !est.Known {
		if !g.cfg.UnknownCost.Reserve {
			return unknownCost(est.Reason)
		}
		est.Cost, est.Known = g.cfg.UnknownCost.Amount, true
	}
	if est.Minimum >= est.Cost || est.Fit == nil {
		est.Minimum = 0
	}
	c.estimate = est
	return nil
}
