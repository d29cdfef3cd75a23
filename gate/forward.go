package gate

import (
	"net/http"

	"github.com/keybrake/keybrake/ledger"
)

// forward lets the next handler (reverse_proxy) send the call upstream and
// stream the vendor's answer to the client, keeping what settle reads on c.
// When the handler panics (reverse_proxy aborts with http.ErrAbortHandler
// when the client leaves mid-response) the call is settled all the same,
// then the panic goes on up.
func (g *Gate) forward(w http.ResponseWriter, r *http.Request, c *call, next Next) {
	w.Header().Set(HeaderCallID, c.id)
	if c.reservation.Outcome == ledger.OutcomeForwarded {
		w.Header().Set(HeaderRemaining, c.reservation.Remaining.String())
	}
	cw := newCaptureWriter(w, g.cfg.MaxResponseCapture)
	if g.settleLater != nil {
		// Once the answer starts to reach the client, this node's reads
		// (the key API) wait for its settlement, which is queued only
		// after the whole answer has gone through.
		cw.onFirstWrite = func() { c.settleQueued = g.settleLater.Expect() }
	}
	c.response = cw
	sent := &sendTrace{}
	returned := false
	defer func() {
		if returned {
			return
		}
		aborted := recover()
		c.status, c.upstreamErr = cw.status, errAborted
		g.settle(r, c)
		if aborted != nil {
			panic(aborted)
		}
	}()
	err := next(cw, sent.wrap(r))
	returned = true
	c.status, c.upstreamErr = cw.status, err
	c.nothingSent = cw.status == 0 && sent.nothingSent(err, g.cfg.DialFailed)
}

// answerUnanswered answers, once the call is settled, a call the vendor
// gave no answer to, unless something has reached the client already.
func (g *Gate) answerUnanswered(w http.ResponseWriter, c *call) {
	switch {
	case c.nothingSent:
		// The vendor never saw the call: its reservation is back and the
		// same request is safe to send again, whatever its method.
		g.cfg.Vendor.WriteError(w, unreachable().vendorError())
	case c.upstreamErr != nil && c.status == 0:
		// Nothing reached the client yet: answer in the vendor's format
		// rather than with Caddy's empty 502.
		g.cfg.Vendor.WriteError(w, upstreamFailed().vendorError())
	}
}
