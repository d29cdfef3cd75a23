// Package reconcile asks vendors what became of the calls whose outcome
// the gate could not tell (cost state unknown), and of reservations left
// by a node that stopped (still reserved after StaleAfter), and settles
// each at the vendor's truth or releases it when the vendor shows nothing
// happened. A call no Finder can decide stays as it is, for an operator
// (POST /vault/calls/{id}/resolve); one still undecided after
// UnknownAfterMax is handed to the operator (Escalate: the call.unknown
// webhook) and never resolved by the reconciler again.
//
// Released only on evidence: money held for a call goes back to its key
// only when the vendor shows, through a consistent read, that the call did
// nothing (Absent). A vendor's search that may lag its writes is not such
// a read; nor is the silence of a vendor about a call that wrote no tag
// on what it may have created.
//
// Resolutions go through the ledger's Resolve, which changes a call once:
// a run repeated, or racing another node, cannot count a call twice. Runs
// are still kept to one node at a time with a Lock (a Postgres advisory
// lock), so a fleet asks the vendor once per call.
package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/periodic"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// Verdicts of a Finder.
const (
	// Undecided: the vendor cannot be asked about this call, or has not
	// answered in a way that settles it. The call is left as it is.
	Undecided = iota
	// Moved: the vendor has the object the call made; Cost is what it moved.
	Moved
	// Absent: a consistent read of the vendor (a list, never a search
	// that may lag) covering every object the call could have made shows
	// none of it: the call did nothing. A Finder returns it only for a
	// call it can recognise (Stripe: by the tag Keybrake wrote; Twilio: by
	// its To and time), never for an untagged one. The reconciler
	// releases it only once the call is NotFoundAfter old, when the vendor
	// can no longer be acting on it.
	Absent
)

// Finding is what a vendor says became of one call.
type Finding struct {
	Verdict int
	Cost    money.Micros // Moved: what the object moved, in USD
	TxnID   string       // Moved: the object's id
	Why     string       // for the audit
	// Candidates, when set with Moved, are the objects that may be the
	// call's, found by listing (Twilio: the messages to its To around its
	// time) rather than by an id Keybrake wrote. Those another call of the
	// key counts already are not it: one left is the call's; none left
	// means the call made none; more than one is undecided.
	Candidates []Candidate
}

// Candidate is an object that may be a call's.
type Candidate struct {
	TxnID string
	Cost  money.Micros
}

// Finder asks one vendor about a call.
type Finder interface {
	Find(ctx context.Context, c ledger.Call) (Finding, error)
}

// Defaults of a Reconciler.
const (
	DefaultInterval      = time.Minute
	DefaultNotFoundAfter = 2 * time.Minute
	// MaxNotFoundAfter bounds NotFoundAfter: the Finders look at objects
	// made up to 5 minutes (Twilio; Stripe 10) after a call's start, with
	// a minute for clocks that differ.
	MaxNotFoundAfter       = 4 * time.Minute
	DefaultUnknownAfterMax = time.Hour
	DefaultBatch           = 100
	DefaultPace            = 100 * time.Millisecond
	// ResolvedBy is recorded as who resolved the calls it resolves.
	ResolvedBy = "reconciler"
)

// Calls is the part of the ledger a Reconciler uses: the calls to look at,
// what a key already counts for a vendor object, and the resolution. A
// ledger.Store is one.
type Calls interface {
	PendingCalls(ctx context.Context, vendor, costState string, startedBefore time.Time, limit int) ([]ledger.Call, error)
	ObjectExposure(ctx context.Context, keyID, vendor, object string) (money.Micros, error)
	Resolve(ctx context.Context, callID string, res ledger.Resolution) (ledger.Call, error)
}

// Reconciler resolves unknown and stale calls with their vendors.
type Reconciler struct {
	// Store is the ledger. Required.
	Store Calls
	// Finders by vendor name; a vendor without one is not asked.
	Finders map[string]Finder
	// StaleAfter is how old a call still reserved must be to count as left
	// by a node that stopped. Default ledger.DefaultStaleAfter.
	StaleAfter time.Duration
	// NotFoundAfter is how old a call must be before "the vendor shows
	// nothing" releases it: longer than the vendor can still be acting on
	// a request (the upstream timeout). Default 2m, at most
	// MaxNotFoundAfter.
	NotFoundAfter time.Duration
	// UnknownAfterMax is how long the reconciler keeps asking about a
	// call; past it the call is handed to an operator (Escalate) and left
	// as it is, its money still counted. Default 1h.
	UnknownAfterMax time.Duration
	// Escalate, when set, tells an operator about a call the reconciler
	// gives up on (the call.unknown webhook); it is called on every run
	// that sees the call, and is expected to say it once.
	Escalate func(ctx context.Context, c ledger.Call, reason string, now time.Time)
	// Interval is the time between runs. Default 1m.
	Interval time.Duration
	// Batch bounds the calls of each vendor and state one run looks at.
	// Default 100.
	Batch int
	// Pace is the pause between two questions to a vendor. Default 100ms.
	Pace time.Duration
	// Lock, when set, is taken (without waiting) for each run: a run that
	// cannot take it does nothing. nil: runs are not locked (one node).
	Lock func(ctx context.Context) (release func(), ok bool, err error)
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Ticks, when set, drives Run instead of a ticker of Interval.
	Ticks  <-chan time.Time
	Logger *zap.Logger
}

func (rc *Reconciler) now() time.Time {
	if rc.Now != nil {
		return rc.Now()
	}
	return time.Now()
}

func (rc *Reconciler) log() *zap.Logger {
	if rc.Logger != nil {
		return rc.Logger
	}
	return zap.NewNop()
}

// Result counts what one run did.
type Result struct {
	Settled, Released, Undecided int
	// Escalated counts the calls past UnknownAfterMax, left to an operator.
	Escalated int
	Locked    bool // another node held the lock: nothing was done
}

// RunOnce looks at each vendor's unknown calls and stale reservations,
// oldest first, asks the vendor about each and resolves what it can.
// Errors on one call do not stop the others; they are returned joined.
func (rc *Reconciler) RunOnce(ctx context.Context) (Result, error) {
	var res Result
	if rc.Store == nil {
		return res, errors.New("reconcile: a store is required")
	}
	if rc.Lock != nil {
		release, ok, err := rc.Lock(ctx)
		if err != nil {
			return res, fmt.Errorf("reconcile: taking the lock: %w", err)
		}
		if !ok {
			res.Locked = true
			return res, nil
		}
		defer release()
	}
	now := rc.now()
	staleBefore := now.Add(-cmp.Or(rc.StaleAfter, ledger.DefaultStaleAfter))
	batch := cmp.Or(rc.Batch, DefaultBatch)
	var errs []error
	asked := 0
	for vendor, f := range rc.Finders {
		var calls []ledger.Call
		for _, q := range []struct {
			state  string
			before time.Time
		}{{ledger.CostUnknown, now}, {ledger.CostReserved, staleBefore}} {
			cs, err := rc.Store.PendingCalls(ctx, vendor, q.state, q.before, batch)
			if err != nil {
				return res, fmt.Errorf("reconcile: listing %s calls of %s: %w", q.state, vendor, err)
			}
			calls = append(calls, cs...)
		}
		for _, c := range calls {
			if age := now.Sub(c.StartedAt); age > cmp.Or(rc.UnknownAfterMax, DefaultUnknownAfterMax) {
				// Never back to the key by itself: an operator decides.
				if rc.Escalate != nil {
					rc.Escalate(ctx, c, fmt.Sprintf("the reconciler could not decide this call in %s; an operator resolves it", age.Round(time.Second)), now)
				}
				res.Escalated++
				continue
			}
			if asked > 0 && !rc.pause(ctx) {
				return res, errors.Join(append(errs, ctx.Err())...)
			}
			asked++
			verdict, err := rc.reconcile(ctx, f, c, now, staleBefore)
			if err != nil {
				rc.log().Warn("reconciling call", zap.String("call_id", c.CallID), zap.String("vendor", vendor), zap.Error(err))
				errs = append(errs, fmt.Errorf("call %s: %w", c.CallID, err))
				continue
			}
			switch verdict {
			case Moved:
				res.Settled++
			case Absent:
				res.Released++
			default:
				res.Undecided++
			}
		}
	}
	return res, errors.Join(errs...)
}

// pause waits Pace, false when ctx ends first.
func (rc *Reconciler) pause(ctx context.Context) bool {
	t := time.NewTimer(cmp.Or(rc.Pace, DefaultPace))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reconcile asks about one call and resolves it when the answer allows.
func (rc *Reconciler) reconcile(ctx context.Context, f Finder, c ledger.Call, now, staleBefore time.Time) (int, error) {
	fd, err := f.Find(ctx, c)
	if err != nil {
		return Undecided, err
	}
	r := ledger.Resolution{By: ResolvedBy, Reason: fd.Why, StaleBefore: staleBefore, Now: now}
	if fd.Verdict == Moved && len(fd.Candidates) > 0 {
		if fd, err = rc.pick(ctx, c, fd); err != nil {
			return Undecided, err
		}
	}
	switch fd.Verdict {
	case Moved:
		// An object the key has counted already (an idempotent retry
		// settled it, or a later call on it) is not counted again.
		counted, err := rc.Store.ObjectExposure(ctx, c.KeyID, c.Vendor, fd.TxnID)
		if err != nil {
			return Undecided, fmt.Errorf("reading what the key counted for %s: %w", fd.TxnID, err)
		}
		r.Cost, r.VendorTxnID = max(fd.Cost-counted, 0), fd.TxnID
		if counted > 0 {
			r.Reason += fmt.Sprintf("; %s already counted by another call", counted)
		}
	case Absent:
		if now.Sub(c.StartedAt) < cmp.Or(rc.NotFoundAfter, DefaultNotFoundAfter) {
			return Undecided, nil
		}
		r.Release = true
	default:
		return Undecided, nil
	}
	got, err := rc.Store.Resolve(ctx, c.CallID, r)
	if errors.Is(err, ledger.ErrNotResolvable) {
		return Undecided, nil // settled meanwhile (its node answered late, another run)
	}
	if err != nil {
		return Undecided, fmt.Errorf("resolving: %w", err)
	}
	rc.log().Info("call reconciled with its vendor", zap.String("call_id", got.CallID), zap.String("key_id", got.KeyID),
		zap.String("vendor", got.Vendor), zap.String("cost_state", got.CostState), zap.String("cost_usd", got.Cost.String()),
		zap.String("reserved_usd", got.Reserved.String()), zap.String("vendor_txn_id", got.VendorTxnID),
		zap.String("reason", got.ResolveReason), zap.Duration("held", now.Sub(c.StartedAt)))
	return fd.Verdict, nil
}

// pick narrows a listing's candidates to the one no other call of the key
// counts: that one is Moved, none is Absent, several are Undecided.
func (rc *Reconciler) pick(ctx context.Context, c ledger.Call, fd Finding) (Finding, error) {
	var free []Candidate
	for _, cand := range fd.Candidates {
		counted, err := rc.Store.ObjectExposure(ctx, c.KeyID, c.Vendor, cand.TxnID)
		if err != nil {
			return fd, fmt.Errorf("reading what the key counted for %s: %w", cand.TxnID, err)
		}
		if counted == 0 {
			free = append(free, cand)
		}
	}
	switch len(free) {
	case 0:
		return Finding{Verdict: Absent, Why: fd.Why + "; each is another call's"}, nil
	case 1:
		return Finding{Verdict: Moved, TxnID: free[0].TxnID, Cost: free[0].Cost, Why: fd.Why + "; " + free[0].TxnID + " is no other call's"}, nil
	}
	return Finding{Verdict: Undecided, Why: fmt.Sprintf("%s; %d could be this call's", fd.Why, len(free))}, nil
}

// Run runs RunOnce every Interval (or on every value of Ticks) until ctx is
// done. It returns ctx's error, or nil when Ticks is closed.
func (rc *Reconciler) Run(ctx context.Context) error {
	return periodic.Run(ctx, rc.Ticks, cmp.Or(rc.Interval, DefaultInterval), func(ctx context.Context) {
		res, err := rc.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			rc.log().Warn("reconciliation run", zap.Int("settled", res.Settled), zap.Int("released", res.Released), zap.Error(err))
		case res.Settled+res.Released > 0:
			rc.log().Info("reconciliation run", zap.Int("settled", res.Settled), zap.Int("released", res.Released),
				zap.Int("undecided", res.Undecided))
		}
	})
}
