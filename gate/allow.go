package gate

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/vendors"
)

// allow refuses a method-override header (the call has the method on its
// line, no other), makes the call's path canonical, as the allowlist, the
// pricing and the audit see it, and refuses it unless the key's allowlist
// has an entry for it.
func (g *Gate) allow(r *http.Request, c *call) *refusal {
	if e := vendors.CheckMethodOverride(r); e != nil { // one reading: one method
		return estimateRefusal(e)
	}
	path, err := vendors.CanonicalPath(r)
	if err != nil {
		return badPath(err)
	}
	c.path, c.recorded = path, path
	if pr, ok := g.cfg.Vendor.(vendors.PathRecorder); ok {
		c.recorded = text.Truncate(pr.RecordedPath(path), 512)
	}
	endpoint, ok := c.cached.Allowlist.Match(r.Method, path)
	if !ok {
		for _, err := range c.cached.AllowlistErrors {
			// Matches nothing, so it cannot have allowed this call; said
			// here, where a refusal may be its consequence.
			g.log.Warn("allowlist entry ignored", zap.String("key_id", c.key.ID), zap.Error(err))
		}
		return endpointDenied(r.Method, path)
	}
	c.endpoint = endpoint
	return nil
}
