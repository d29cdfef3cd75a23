package gate

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/internal/authlimit"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/vendors"
)

// statusClientClosed is the status Caddy's reverse_proxy writes itself when
// the client goes away before the upstream answers; no vendor sends it.
const statusClientClosed = 499

// errAborted stands for a handler chain that never returned (it panicked).
var errAborted = errors.New("handler aborted")

// call is what the gate knows of one request as it goes.
type call struct {
	id       string
	started  time.Time
	key      *ledger.Key
	secret   string // the vault key: compared and scrubbed, never logged
	path     string // canonical, as the allowlist and the pricing see it
	recorded string // as logged and audited (PathRecorder)
	endpoint string
	estimate vendors.Estimate
	idemKey  string
	body     []byte // the client's, as priced and fingerprinted
	// fingerprint and replayWindow are set when the vendor honours idemKey.
	fingerprint  string
	replayWindow time.Duration
	// settleQueued, when set, says the call's settlement is queued: its
	// answer started to reach the client before (ledger.Batcher.Expect).
	settleQueued func()
}

// ServeHTTP gates one vendor call. It answers refusals itself and returns
// nil; it only returns an error for a failure Caddy should handle.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	if g.cfg.NotConfigured != "" {
		g.cfg.Vendor.WriteError(w, vendors.NotConfigured(g.cfg.NotConfigured))
		return nil
	}
	c := &call{id: newCallID(), started: g.cfg.Now()}
	f := g.admit(r, c)
	if f != nil {
		g.refuse(w, r, c, f)
		return nil
	}
	// The reservation runs on a context the client cannot cancel: a
	// reservation that commits while the gate has stopped listening would
	// otherwise be held with no one to settle it.
	reserveCtx, cancel := g.ledgerContext(r)
	defer cancel()
	res, err := g.cfg.Store.Reserve(reserveCtx, ledger.ReserveRequest{
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
		Now:            c.started,
	})
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		g.refuse(w, r, c, keyStatusRefusal(""))
		return nil
	case err != nil:
		g.log.Error("reserving cost", zap.String("call_id", c.id), zap.Error(err))
		g.refuse(w, r, c, unavailable())
		return nil
	}
	switch res.Outcome {
	case ledger.OutcomeForwarded, ledger.OutcomeIdempotentReplay:
	case ledger.OutcomeCapHit:
		g.refuse(w, r, c, capHitRefusal(res.Remaining))
		g.cfg.Alerts.CapHit(reserveCtx, c.key, c.id, c.endpoint, res.Remaining, c.started)
		return nil
	case ledger.OutcomeEndpointDenied:
		// The allowlist as stored no longer has the entry the cached key
		// matched (a PATCH narrowed it); Reserve recorded the refusal.
		g.refuse(w, r, c, &refusal{status: http.StatusForbidden, code: "keybrake_endpoint_denied",
			message: "This vault key may not call " + r.Method + " " + c.path + ".", outcome: ledger.OutcomeEndpointDenied})
		return nil
	case ledger.OutcomeBudgetHit:
		g.refuse(w, r, c, budgetHitRefusal(res.Remaining)) // recorded by Reserve
		return nil
	case ledger.OutcomeIdempotencyMismatch, ledger.OutcomeIdempotencyInFlight:
		g.refuse(w, r, c, g.idempotencyRefusal(res.Outcome)) // recorded by Reserve
		return nil
	default:
		f := keyStatusRefusal(res.Outcome)
		f.record = false // Reserve has recorded it already
		g.refuse(w, r, c, f)
		return nil
	}
	if r.Context().Err() != nil {
		// The client left while the reservation was made: forward
		// nothing and give the reservation back.
		g.release(r, c, &refusal{status: statusClientClosed, outcome: ledger.OutcomeClientGone})
		return nil
	}
	if res.Outcome == ledger.OutcomeForwarded {
		if f := g.fit(r, c, res.Reserved); f != nil {
			g.release(r, c, f)
			g.refuse(w, r, c, f)
			return nil
		}
	}
	return g.forward(w, r, c, res, next)
}

// OutcomeAuthThrottled is the logged outcome of a call refused because its
// address kept presenting unknown vault keys (nothing is recorded: no key
// is known).
const OutcomeAuthThrottled = "auth_throttled"

// admit runs every check that needs no reservation, cheapest first.
func (g *Gate) admit(r *http.Request, c *call) *refusal {
	v := g.cfg.Vendor
	secret, ok := v.Credential(r)
	if !ok {
		return &refusal{status: http.StatusUnauthorized, code: "keybrake_missing_credential",
			message: "No vault key provided. Send the vault key where the " + v.Name() + " SDK sends its API key.",
			outcome: ledger.OutcomeUnauthenticated}
	}
	c.secret = secret
	addr := authlimit.ClientAddr(r.RemoteAddr)
	if ok, _ := g.cfg.AuthLimiter.Allow(addr, c.started); !ok {
		return &refusal{status: http.StatusTooManyRequests, code: "keybrake_too_many_failed_attempts",
			message: "Too many unknown vault keys from this address; Keybrake refuses it for a while.",
			outcome: OutcomeAuthThrottled}
	}
	h := ledger.HashSecret(secret)
	key, err := g.cfg.Keys.Lookup(r.Context(), h)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		g.cfg.AuthLimiter.Fail(addr, c.started)
		return &refusal{status: http.StatusUnauthorized, code: "keybrake_invalid_key",
			message: "Invalid vault key.", outcome: ledger.OutcomeUnauthenticated}
	case err != nil:
		g.log.Error("looking up vault key", zap.String("call_id", c.id), zap.Error(err))
		return unavailable()
	}
	// The lookup was by hash already; comparing in constant time as well
	// keeps a future index change from opening a timing side channel.
	if subtle.ConstantTimeCompare(key.Hash[:], h[:]) != 1 {
		g.cfg.AuthLimiter.Fail(addr, c.started)
		return &refusal{status: http.StatusUnauthorized, code: "keybrake_invalid_key",
			message: "Invalid vault key.", outcome: ledger.OutcomeUnauthenticated}
	}
	c.key = &key.Key
	if key.Vendor != v.Name() {
		return keyStatusRefusal(ledger.OutcomeWrongVendor)
	}
	// The cached status may be stale in the active direction only for
	// the cache TTL; Reserve checks again in the ledger.
	if st := key.Status(c.started); st != ledger.StatusActive {
		return keyStatusRefusal(st)
	}
	path, err := vendors.CanonicalPath(r)
	if err != nil {
		return &refusal{status: http.StatusBadRequest, code: "keybrake_bad_path",
			message: "Keybrake refuses this path: " + err.Error() + ".", outcome: ledger.OutcomeBadRequest, record: true}
	}
	c.path, c.recorded = path, path
	if pr, ok := v.(vendors.PathRecorder); ok {
		c.recorded = truncate(pr.RecordedPath(path), 512)
	}

	endpoint, ok := key.Allowlist.Match(r.Method, path)
	if !ok {
		for _, err := range key.AllowlistErrors {
			// Matches nothing, so it cannot have allowed this call; said
			// here, where a refusal may be its consequence.
			g.log.Warn("allowlist entry ignored", zap.String("key_id", key.ID), zap.Error(err))
		}
		return &refusal{status: http.StatusForbidden, code: "keybrake_endpoint_denied",
			message: "This vault key may not call " + r.Method + " " + path + ".",
			outcome: ledger.OutcomeEndpointDenied, record: true}
	}
	c.endpoint = endpoint
	body, f := g.readBody(r)
	if f != nil {
		return f
	}
	c.body = body
	if sr, ok := v.(vendors.ScopeRecorder); ok {
		if scope := sr.RecordedScope(r, body); scope != "" {
			c.recorded = truncate(c.recorded+"?"+scope, 512)
		}
	}
	if f := misplacedKey(r, secret, body); f != nil {
		return f
	}
	if f := g.idempotency(r, c, body); f != nil {
		return f
	}
	return g.price(r, c, body)
}

// readBody reads the request body for pricing and puts it back for the
// upstream.
func (g *Gate) readBody(r *http.Request) ([]byte, *refusal) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.cfg.MaxRequestBody+1))
	_ = r.Body.Close()
	if err != nil {
		return nil, &refusal{status: http.StatusBadRequest, code: "keybrake_body_unreadable",
			message: "The request body could not be read.", outcome: ledger.OutcomeBadRequest}
	}
	if int64(len(body)) > g.cfg.MaxRequestBody {
		return nil, &refusal{status: http.StatusRequestEntityTooLarge, code: "keybrake_body_too_large",
			message: "The request body is larger than Keybrake accepts.", outcome: ledger.OutcomeBadRequest, record: true}
	}
	setBody(r, body)
	return body, nil
}

// forward sends the call upstream with the real secret and settles it.
func (g *Gate) forward(w http.ResponseWriter, r *http.Request, c *call, res ledger.ReserveResult, next Next) error {
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-keybrake-") {
			r.Header.Del(name)
		}
	}
	// The response must arrive uncompressed for the gate to read it.
	r.Header.Del("Accept-Encoding")
	err := g.cfg.Vendor.Authorize(r)
	dropKeyHeaders(r, c.secret)
	if err == nil && keyInPath(r, c.secret) {
		f := keyInURL()
		f.record = false // the call row exists; release records the refusal
		g.release(r, c, f)
		g.refuse(w, r, c, f)
		return nil
	}
	if err != nil {
		// Nothing was forwarded: the reservation goes back and the call
		// is refused in the vendor's format.
		f := authorizeRefusal(err)
		g.release(r, c, f)
		g.refuse(w, r, c, f)
		return nil
	}
	if f := g.tag(r, c); f != nil {
		g.release(r, c, f)
		g.refuse(w, r, c, f)
		return nil
	}
	w.Header().Set(HeaderCallID, c.id)
	if res.Outcome == ledger.OutcomeForwarded {
		w.Header().Set(HeaderRemaining, res.Remaining.String())
	}
	cw := newCaptureWriter(w, g.cfg.MaxResponseCapture)
	if b, ok := g.cfg.Store.(ledger.Batcher); ok && g.cfg.SettleAfterResponse {
		// Once the answer starts to reach the client, this node's reads
		// (the key API) wait for its settlement, which is queued only
		// after the whole answer has gone through.
		cw.onFirstWrite = func() { c.settleQueued = b.Expect() }
	}
	sent := &sendTrace{}
	settled := false
	defer func() {
		if settled {
			return
		}
		// reverse_proxy aborts the handler (panics with
		// http.ErrAbortHandler) when the client leaves mid-response; the
		// call must still be settled, then the panic goes on up.
		aborted := recover()
		g.settle(r, c, res, cw.status, cw, errAborted, false)
		if aborted != nil {
			panic(aborted)
		}
	}()
	err = next(cw, sent.wrap(r))
	settled = true
	nothingSent := cw.status == 0 && sent.nothingSent(err, g.cfg.DialFailed)
	g.settle(r, c, res, cw.status, cw, err, nothingSent)
	if nothingSent {
		// The vendor never saw the call: its reservation is back and the
		// same request is safe to send again, whatever its method.
		g.cfg.Vendor.WriteError(w, unreachable().vendorError())
		return nil
	}
	if err != nil && cw.status == 0 {
		// Nothing reached the client yet: answer in the vendor's format
		// rather than with Caddy's empty 502.
		g.cfg.Vendor.WriteError(w, &vendors.Error{Status: http.StatusBadGateway, Code: "keybrake_upstream_error",
			Message: "Keybrake could not get an answer from the vendor. The call may or may not have been made; " +
				"its reservation is kept until it is reconciled.", Retryable: true})
	}
	return nil
}

// tag writes the call's tag on the object it creates, when the vendor
// takes one (vendors.Tagger), and records it on the call before anything
// is forwarded: a fresh random tag, or the first attempt's for a retry or
// replay of one idempotent request (ledger TagCall). It runs after
// pricing and fingerprinting, which read the client's own body. A create
// that cannot carry the tag is refused: the reconciler could never show
// that such a call did nothing.
func (g *Gate) tag(r *http.Request, c *call) *refusal {
	t, ok := g.cfg.Vendor.(vendors.Tagger)
	if !ok {
		return nil
	}
	tag := vendors.CallTag{ID: newTagID(), RunLabel: c.key.RunLabel}
	out, err := t.Tag(r, c.path, c.body, tag)
	if err != nil {
		f := authorizeRefusal(err)
		f.record = false // the call row exists; release records the refusal
		return f
	}
	if out == nil {
		return nil
	}
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	recorded, err := g.cfg.Store.TagCall(ctx, c.id, tag.ID, c.replayWindow)
	if err != nil {
		g.log.Error("recording a call's tag", zap.String("call_id", c.id), zap.Error(err))
		return unavailable()
	}
	if recorded != tag.ID {
		tag.ID = recorded
		if out, err = t.Tag(r, c.path, c.body, tag); err != nil || out == nil {
			return authorizeRefusal(cmp.Or(err, errors.New("the call's first attempt was tagged, this one cannot be")))
		}
	}
	setBody(r, out)
	return nil
}

// authorizeRefusal is the refusal of a call the vendor could not rewrite
// for upstream (Vendor.Authorize failed): the vendor's own *vendors.Error
// when it is one (Twilio's 404 for a path with no account), else a 400.
func authorizeRefusal(err error) *refusal {
	f := &refusal{status: http.StatusBadRequest, code: "keybrake_bad_request", message: err.Error(),
		outcome: ledger.OutcomeBadRequest}
	var ve *vendors.Error
	if errors.As(err, &ve) && ve.Status >= 400 && ve.Status < 600 {
		f.status, f.retryable = ve.Status, ve.Retryable
		if ve.Code != "" {
			f.code = ve.Code
		}
		if ve.Message != "" {
			f.message = ve.Message
		}
	}
	return f
}

// release returns the reservation of a call refused after Reserve and
// before anything was forwarded, recording the refusal's status and
// outcome on the call (Reserve has written the call record already).
func (g *Gate) release(r *http.Request, c *call, f *refusal) {
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	err := g.cfg.Store.Release(ctx, c.id, ledger.Settlement{StatusCode: f.status, Outcome: f.outcome, Now: g.cfg.Now()})
	if err != nil {
		// The reservation stays held, erring on the side of the cap.
		g.log.Error("releasing a call refused before forwarding", zap.String("call_id", c.id), zap.Error(err))
	}
}

// settle turns the vendor's answer into a ledger settlement. It runs after
// the client has its response, on a context that outlives the request, so a
// client hanging up cannot leave the ledger unsettled. With
// SettleAfterResponse the settlement is queued for the ledger's next batch
// and what follows its commit (log, metrics, alerts) runs then.
func (g *Gate) settle(r *http.Request, c *call, res ledger.ReserveResult, status int, cw *captureWriter, upstreamErr error, nothingSent bool) {
	defer func() {
		if c.settleQueued != nil {
			c.settleQueued()
		}
	}()
	now := g.cfg.Now()
	s := ledger.Settlement{StatusCode: status, Now: now}
	var result vendors.Result
	switch {
	case nothingSent:
		// No connection ever carried the request (sendTrace): the vendor
		// cannot have acted, so the reservation goes back.
		result.Decision = vendors.DecisionRelease
		s.StatusCode, s.Outcome = http.StatusBadGateway, ledger.OutcomeUpstreamUnreachable
	case status == statusClientClosed, errors.Is(upstreamErr, errAborted) && status == 0:
		// The client left before the vendor's answer arrived: Caddy's
		// reverse_proxy answers 499 itself, or aborts the handler. The
		// vendor may have acted, so the reservation is kept.
		result.Decision = vendors.DecisionUnknown
		s.Outcome = ledger.OutcomeClientGone
	case upstreamErr != nil && status == 0:
		result.Decision = vendors.DecisionUnknown
		s.Outcome = ledger.OutcomeUpstreamError
	case status == 0:
		result.Decision = vendors.DecisionUnknown
	default:
		result = g.cfg.Vendor.Settle(r, status, cw.Header(), cw.body, c.estimate)
	}
	s.VendorTxnID, s.VendorAmount, s.VendorCurrency = result.TxnID, result.Amount, result.Currency
	mode := ledger.FinishUnknown
	switch {
	case res.Outcome == ledger.OutcomeIdempotentReplay:
		// A replay reserved nothing and costs nothing, and its row is
		// final as Reserve wrote it; the original settles itself (an
		// original whose outcome was ambiguous is never replayed).
		mode = ""
	case result.Decision == vendors.DecisionSettle:
		s.Cost, s.CostState, mode = result.Cost, ledger.CostSettled, ledger.FinishSettle
	case result.Decision == vendors.DecisionUnpriced:
		s.Cost, s.CostState, mode = c.estimate.Cost, ledger.CostUnpriced, ledger.FinishSettle
	case result.Decision == vendors.DecisionRelease:
		mode = ledger.FinishRelease
	}
	settled := func(err error) { g.settled(r, c, res, status, result, s, upstreamErr, err) }
	ctx, cancel := g.ledgerContext(r)
	if b, ok := g.cfg.Store.(ledger.Batcher); ok && g.cfg.SettleAfterResponse && mode != "" {
		queued := c.settleQueued
		c.settleQueued = nil // held until the settlement is written
		g.finishLater(ctx, b, ledger.Finish{CallID: c.id, Mode: mode, Settlement: s}, func(err error) {
			cancel()
			if queued != nil {
				queued()
			}
			// Off the ledger's batch loop: alerts may read and write
			// the ledger.
			go settled(err)
		})
		return
	}
	defer cancel()
	var err error
	switch mode {
	case ledger.FinishSettle:
		err = g.cfg.Store.Settle(ctx, c.id, s)
	case ledger.FinishRelease:
		err = g.cfg.Store.Release(ctx, c.id, s)
	case ledger.FinishUnknown:
		err = g.cfg.Store.MarkUnknown(ctx, c.id, s)
	}
	settled(err)
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
// failed), then tells the alerter.
func (g *Gate) settled(r *http.Request, c *call, res ledger.ReserveResult, status int, result vendors.Result, s ledger.Settlement,
	upstreamErr, err error) {
	now := s.Now
	fields := []zap.Field{
		zap.String("call_id", c.id),
		zap.String("key_id", c.key.ID),
		zap.String("agent_run_label", c.key.RunLabel),
		zap.String("vendor", g.cfg.Vendor.Name()),
		zap.String("method", r.Method),
		zap.String("path", c.recorded),
		zap.String("endpoint", c.endpoint),
		zap.Int("status", status),
		zap.String("outcome", res.Outcome),
		zap.String("decision", result.Decision),
		zap.String("reserved_usd", c.estimate.Cost.String()),
		zap.String("cost_usd", s.Cost.String()),
		zap.String("vendor_txn_id", result.TxnID),
		zap.Duration("duration", now.Sub(c.started)),
	}
	if upstreamErr != nil {
		fields = append(fields, zap.NamedError("upstream_error", upstreamErr))
	}
	g.observe(Event{Vendor: g.cfg.Vendor.Name(), Outcome: res.Outcome, Decision: result.Decision, Status: status,
		Reserved: c.estimate.Cost, Cost: s.Cost, Duration: now.Sub(c.started), LedgerError: err != nil})
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
	g.alert(ctx, r, c, res, result.Decision, s)
}

// ledgerContext is the context of a ledger write made for r: it outlives
// the client (a write that commits while the gate has stopped listening
// would otherwise be held with no one to settle it) and is bounded by
// SettleTimeout.
func (g *Gate) ledgerContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), g.cfg.SettleTimeout)
}

// alert tells the alerter what a settled call may have raised: a cap's
// threshold crossed (read from the key only when the reservation's
// headroom says one may have been), or an unknown outcome.
func (g *Gate) alert(ctx context.Context, r *http.Request, c *call, res ledger.ReserveResult, decision string, s ledger.Settlement) {
	a := g.cfg.Alerts
	switch {
	case res.Outcome == ledger.OutcomeIdempotentReplay:
	case decision == vendors.DecisionSettle, decision == vendors.DecisionUnpriced:
		headroom := res.Remaining - max(0, s.Cost-res.Reserved)
		if s.Cost > 0 && a.MayCross(c.key, headroom) {
			a.KeySpent(ctx, c.key.ID, s.Now)
		}
		if s.Cost > 0 && c.key.TokenID != "" && a.WantsBudgets() {
			// A token's budget spans keys on every node: this call's
			// headroom says nothing about it, so the token is read.
			a.TokenSpent(ctx, c.key.TokenID, s.Now)
		}
	case decision == vendors.DecisionRelease:
	default:
		a.CallUnknown(ctx, alerts.CallUnknownData{
			CallID: c.id, KeyID: c.key.ID, RunLabel: c.key.RunLabel, Vendor: g.cfg.Vendor.Name(),
			Method: r.Method, Path: c.recorded, Outcome: cmp.Or(s.Outcome, res.Outcome), StatusCode: s.StatusCode, ReservedUSD: res.Reserved,
		}, s.Now)
	}
}

func (g *Gate) observe(e Event) {
	if g.cfg.Observe != nil {
		g.cfg.Observe(e)
	}
}

// refuse answers a refusal in the vendor's format, logs it, and records it
// when the key is known.
func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, c *call, f *refusal) {
	h := w.Header()
	h.Set(HeaderCallID, c.id)
	if f.capHit {
		h.Set(HeaderCapHit, "true")
	}
	if f.budget != "" {
		h.Set(HeaderBudget, f.budget)
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
	if c.key != nil {
		fields = append(fields, zap.String("key_id", c.key.ID), zap.String("agent_run_label", c.key.RunLabel))
	}
	g.log.Info("vendor call refused", fields...)
	g.observe(Event{Vendor: g.cfg.Vendor.Name(), Outcome: f.outcome, Status: f.status,
		Duration: g.cfg.Now().Sub(c.started), LedgerError: f.status == http.StatusServiceUnavailable})
	if !f.record || c.key == nil {
		return
	}
	path := c.pathForRecord(r)
	ctx, cancel := g.ledgerContext(r)
	defer cancel()
	err := g.cfg.Store.RecordRefusal(ctx, ledger.Call{
		CallID:     c.id,
		KeyID:      c.key.ID,
		RunLabel:   c.key.RunLabel,
		Vendor:     g.cfg.Vendor.Name(),
		Method:     r.Method,
		Path:       path,
		Endpoint:   c.endpoint,
		StatusCode: f.status,
		Outcome:    f.outcome,
		CostState:  ledger.CostNone,
		StartedAt:  c.started,
		FinishedAt: ptr(g.cfg.Now()),
	})
	if err != nil {
		g.log.Error("recording refusal", zap.String("call_id", c.id), zap.Error(err))
	}
}

// pathForRecord is the path as logged and audited: as the vendor's
// PathRecorder gives it once the path is canonical, else the raw path with
// any vault key it carries (a Twilio client may put it in the account
// segment) masked, and never more than 512 bytes.
func (c *call) pathForRecord(r *http.Request) string {
	if c.recorded != "" {
		return c.recorded
	}
	p := r.URL.Path
	if !utf8.ValidString(p) {
		p = strings.ToValidUTF8(p, "\ufffd")
	}
	if c.secret != "" {
		p = strings.ReplaceAll(p, c.secret, "{vault_key}")
	}
	return truncate(p, 512)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func ptr[T any](v T) *T { return &v }
