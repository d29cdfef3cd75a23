package caddymodule

import "github.com/caddyserver/caddy/v2"

// Cleanup answers the calls this handler holds for approval with the
// pending refusal (their approvals stay, for a retry), so a stopping
// config does not keep them waiting.
func (h *Handler) Cleanup() error {
	if h.gate != nil {
		h.gate.Shutdown()
	}
	return nil
}

// Interface guard.
var _ caddy.CleanerUpper = (*Handler)(nil)
