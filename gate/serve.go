package gate

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keybrake/keybrake/internal/text"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/vendors"
)

// statusClientClosed is the status Caddy's reverse_proxy writes itself when
// the client goes away before the upstream answers; no vendor sends it.
const statusClientClosed = 499

// errAborted stands for a handler chain that never returned (it panicked).
var errAborted = errors.New("handler aborted")

// call is what the gate knows of one request as it goes: each stage fills
// in what it learns, for the stages after it.
type call struct {
	id      string
	started time.Time

	// authenticate
	cached ledger.CachedKey // the key as looked up, its allowlist compiled
	key    *ledger.Key      // &cached.Key, nil while no key is known
	secret string           // the vault key: compared and scrubbed, never logged
	// allow
	path     string // canonical, as the allowlist and the pricing see it
	recorded string // as logged and audited (PathRecorder, ScopeRecorder)
	endpoint string
	// read, idempotency
	body    []byte // the client's, as priced and fingerprinted
	idemKey string
	// fingerprint and replayWindow are set when the vendor honours idemKey.
	fingerprint  string
	replayWindow time.Duration
	// price
	estimate vendors.Estimate
	// rules: what the ledger is told for the key's stateful rules
	movesMoney bool
	oncePer    string
	onceValues []string
	// tag: the tag drawn for the call, "" when it writes none
	tag string
	// reserve
	reservation ledger.ReserveResult

	// forward
	response    *captureWriter // what the client got, as far as kept
	status      int            // the answer's status; 0 when none came
	upstreamErr error          // the next handler's error, errAborted if it panicked
	nothingSent bool           // the call provably never reached the vendor (sendTrace)
	// settleQueued, when set, says the call's settlement is queued: its
	// answer started to reach the client before (ledger.Batcher.Expect).
	settleQueued func()

	// settle
	result     vendors.Result
	settlement ledger.Settlement
	finish     ledger.FinishMode // or finishReplay
}

// stage is one step of the gate before forwarding: it reads the request,
// fills in c, and returns a refusal to stop the call there.
type stage func(g *Gate, r *http.Request, c *call) *refusal

// beforeReservation are the stages before anything is reserved, cheapest
// first. A refusal of one is recorded when the key is known (refuse).
var beforeReservation = [...]stage{
	(*Gate).authenticate, // authenticate.go: the vault key, its status
	(*Gate).allow,        // allow.go: canonical path, endpoint allowlist
	(*Gate).read,         // read.go: the body, the vault key where it must not be
	(*Gate).idempotency,  // idempotency.go: the idempotency key, the fingerprint
	(*Gate).price,        // price.go: the estimate, or unknown_cost
	(*Gate).tag,          // tag.go: the tag the call writes, or a refusal
	(*Gate).rules,        // rules.go: the key's rules on the call's subjects
}

// afterReservation are the stages between the reservation and forwarding.
// A refusal of one gives the reservation back, which records it (release).
var afterReservation = [...]stage{
	(*Gate).listening,       // reserve.go: the client is still there
	(*Gate).approval,        // approval.go: a person decides a call above the key's threshold
	(*Gate).fit,             // fit.go: the request bounded to what was reserved
	(*Gate).prepareUpstream, // upstream.go: the real secret in, the vault key out
}

// ServeHTTP gates one vendor call: the stages above, the reservation
// between them (reserve.go; Reserve records the refusals it decides), then
// forward (forward.go) and settle (settle.go). It answers refusals itself
// and returns nil; it only returns an error for a failure Caddy should
// handle.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	if g.cfg.NotConfigured != "" {
		g.cfg.Vendor.WriteError(w, vendors.NotConfigured(g.cfg.NotConfigured))
		return nil
	}
	now := g.cfg.Now()
	c := &call{id: newCallID(now), started: now}
	for _, stage := range beforeReservation {
		if f := stage(g, r, c); f != nil {
			g.refuse(w, r, c, f)
			return nil
		}
	}
	if f := g.reserve(r, c); f != nil {
		g.answer(w, r, c, f)
		return nil
	}
	for _, stage := range afterReservation {
		if f := stage(g, r, c); f != nil {
			g.release(w, r, c, f)
			return nil
		}
	}
	g.forward(w, r, c, next)
	g.settle(r, c)
	g.answerUnanswered(w, c)
	return nil
}

// ledgerContext is the context of a ledger write made for r: it outlives
// the client (a write that commits while the gate has stopped listening
// would otherwise be held with no one to settle it) and is bounded by
// SettleTimeout.
func (g *Gate) ledgerContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), g.cfg.SettleTimeout)
}

func (g *Gate) observe(e Event) {
	if g.cfg.Observe != nil {
		g.cfg.Observe(e)
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
	return text.Truncate(p, 512)
}

func ptr[T any](v T) *T { return &v }
