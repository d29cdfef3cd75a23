package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// FinishMode is how a call's reservation ends: Settle, Release or
// MarkUnknown. The gate maps a vendor's decision (vendors.Decision) to one.
type FinishMode string

// Finish modes.
const (
	FinishSettle  FinishMode = "settle"
	FinishRelease FinishMode = "release"
	FinishUnknown FinishMode = "unknown"
)

// Finish is a Settle, Release or MarkUnknown of one call, as a batch op.
type Finish struct {
	CallID     string
	Mode       FinishMode
	Settlement Settlement
}

// Op is one ledger write a Coalescer batches: a reservation or a finish.
// Exactly one of Reserve and Finish is set.
type Op struct {
	Reserve *ReserveRequest
	Finish  *Finish
}

// BatchRunner writes ops in one transaction, finishes before
// reservations (a reservation of the batch sees every settlement queued
// before it), and returns one result and one error per op, in order. An
// op that fails alone gets its own error; the others still commit. When
// the whole transaction fails, every op gets the error (nothing of the
// batch committed).
type BatchRunner func(ctx context.Context, ops []Op) ([]ReserveResult, []error)

// DefaultBatchMax bounds the ops of one batch: enough for every in-flight
// call of a busy node to go in one commit, few enough that one batch's
// locks are not held for long.
const DefaultBatchMax = 128

// defaultBatchTimeout bounds a batch whose ops carry no deadline.
const defaultBatchTimeout = 30 * time.Second

// ErrClosed: the store was closed before the op could be written.
var ErrClosed = fmt.Errorf("%w: store closed", ErrUnavailable)

// Coalescer is the group commit of a node's ledger writes. Ops queue while
// a batch is in flight and go together in the next one: there is no timer,
// so a lone call waits for nothing but its own commit, and a busy node
// commits once for many calls. One batch is in flight at a time, so batches
// commit in the order their ops were queued.
type Coalescer struct {
	run BatchRunner
	max int

	mu      sync.Mutex
	queue   []*pendingOp
	last    *pendingOp // the op queued last, for Wait
	running bool
	closed  bool
	// expected are ops announced by Expect and not queued yet.
	expected map[*expectation]struct{}

	batches, ops, reserves, finishes atomic.Uint64
}

type pendingOp struct {
	op       Op
	deadline time.Time // zero: none
	done     chan struct{}
	res      ReserveResult
	err      error
	then     func(ReserveResult, error)
}

// NewCoalescer returns a Coalescer that writes batches of at most max ops
// (DefaultBatchMax when max <= 0) with run.
func NewCoalescer(run BatchRunner, max int) *Coalescer {
	if max <= 0 {
		max = DefaultBatchMax
	}
	return &Coalescer{run: run, max: max}
}

// Do queues op and waits until its batch has committed (or failed). It
// waits whatever ctx says, so an op is never reported failed while it may
// still commit; ctx's deadline bounds the batch it goes in. A caller that
// finds no batch in flight writes its own batch itself, in its goroutine.
func (c *Coalescer) Do(ctx context.Context, op Op) (ReserveResult, error) {
	p, lead := c.enqueue(ctx, op, nil)
	if lead {
		c.lead(p)
	}
	<-p.done
	return p.res, p.err
}

// Go queues op and returns at once; then, when set, is called with its
// result once its batch has committed or failed. Ops queued by Go before a
// Do are in the same batch or an earlier one.
func (c *Coalescer) Go(ctx context.Context, op Op, then func(ReserveResult, error)) {
	if _, lead := c.enqueue(ctx, op, then); lead {
		go c.loop()
	}
}

// enqueue queues op; it reports whether no batch was in flight, in which
// case the caller must write the queue (lead or loop).
func (c *Coalescer) enqueue(ctx context.Context, op Op, then func(ReserveResult, error)) (*pendingOp, bool) {
	p := &pendingOp{op: op, done: make(chan struct{}), then: then}
	if d, ok := ctx.Deadline(); ok {
		p.deadline = d
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		p.err = ErrClosed
		c.finish(p)
		return p, false
	}
	c.queue = append(c.queue, p)
	c.last = p
	lead := !c.running
	c.running = true
	c.mu.Unlock()
	return p, lead
}

// lead writes batches in the caller's goroutine until p's is written, then
// hands whatever has queued meanwhile to a goroutine of its own.
func (c *Coalescer) lead(p *pendingOp) {
	for c.next() {
		select {
		case <-p.done:
			c.mu.Lock()
			idle := len(c.queue) == 0
			if idle {
				c.running = false
			}
			c.mu.Unlock()
			if !idle {
				go c.loop()
			}
			return
		default:
		}
	}
}

// loop writes batches until the queue is empty.
func (c *Coalescer) loop() {
	for c.next() {
	}
}

// next writes the next batch; false when the queue is empty (the
// Coalescer is then idle).
func (c *Coalescer) next() bool {
	c.mu.Lock()
	n := min(len(c.queue), c.max)
	if n == 0 {
		c.running = false
		c.mu.Unlock()
		return false
	}
	batch := c.queue[:n:n]
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil
	}
	c.mu.Unlock()
	c.write(batch)
	return true
}

func (c *Coalescer) write(batch []*pendingOp) {
	deadline := time.Now().Add(defaultBatchTimeout)
	ops := make([]Op, len(batch))
	for i, p := range batch {
		ops[i] = p.op
		if !p.deadline.IsZero() && p.deadline.Before(deadline) {
			deadline = p.deadline
		}
		if p.op.Reserve != nil {
			c.reserves.Add(1)
		} else {
			c.finishes.Add(1)
		}
	}
	c.batches.Add(1)
	c.ops.Add(uint64(len(batch)))
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	results, errs := c.run(ctx, ops)
	cancel()
	for i, p := range batch {
		if i < len(results) {
			p.res = results[i]
		}
		if i < len(errs) {
			p.err = errs[i]
		} else {
			p.err = errors.New("batch returned no result for this op")
		}
		c.finish(p)
	}
}

func (c *Coalescer) finish(p *pendingOp) {
	close(p.done)
	if p.then != nil {
		p.then(p.res, p.err)
	}
}

// FinishLater queues a finish (see Batcher).
func (c *Coalescer) FinishLater(ctx context.Context, f Finish, then func(error)) {
	c.Go(ctx, Op{Finish: &f}, func(_ ReserveResult, err error) {
		if then != nil {
			then(err)
		}
	})
}

// Wait returns once every op queued before it has committed or failed, or
// when ctx is done.
func (c *Coalescer) Wait(ctx context.Context) error {
	c.mu.Lock()
	p := c.last
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued, waiting at most until ctx is done, and
// refuses ops from then on (ErrClosed). Ops still queued when ctx ends are
// written by the loop all the same, against a store being closed: they
// fail, which leaves a settlement's call reserved for the reconciler.
func (c *Coalescer) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Wait(ctx)
}

// BatchStats counts what a Coalescer has written.
type BatchStats struct {
	Batches  uint64 // transactions committed or tried
	Ops      uint64 // ops in them
	Reserves uint64 // of Ops, reservations
	Finishes uint64 // of Ops, settlements, releases and unknowns
}

// expectation is an op announced by Expect.
type expectation struct{ queued chan struct{} }

// Expect announces an op that will be queued shortly: the settlement of a
// call whose answer is already reaching its client. Settled waits for it
// as for an op already queued. The returned func is called once the op is
// queued (or when it will not be); calling it again does nothing.
func (c *Coalescer) Expect() (queued func()) {
	e := &expectation{queued: make(chan struct{})}
	c.mu.Lock()
	if c.expected == nil {
		c.expected = map[*expectation]struct{}{}
	}
	c.expected[e] = struct{}{}
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.expected, e)
			c.mu.Unlock()
			close(e.queued)
		})
	}
}

// Settled waits until the ops announced by Expect before it are queued,
// then until every op queued before then is written.
func (c *Coalescer) Settled(ctx context.Context) error {
	c.mu.Lock()
	waits := make([]chan struct{}, 0, len(c.expected))
	for e := range c.expected {
		waits = append(waits, e.queued)
	}
	c.mu.Unlock()
	for _, q := range waits {
		select {
		case <-q:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.Wait(ctx)
}

// WriteBatch writes ops in one transaction at once, outside the queue.
func (c *Coalescer) WriteBatch(ctx context.Context, ops []Op) ([]ReserveResult, []error) {
	return c.run(ctx, ops)
}

// BatchStats returns the counts so far.
func (c *Coalescer) BatchStats() BatchStats {
	return BatchStats{Batches: c.batches.Load(), Ops: c.ops.Load(), Reserves: c.reserves.Load(), Finishes: c.finishes.Load()}
}

// Batcher is a Store whose writes go through a Coalescer (a backend embeds
// its *Coalescer for these methods): it can queue a finish without waiting
// for it, wait for what it has queued, and report its batch counts.
type Batcher interface {
	// FinishLater queues a settlement, release or unknown and returns at
	// once; then, when set, gets its result once written. A Reserve on
	// this store that starts after FinishLater returns sees it.
	FinishLater(ctx context.Context, f Finish, then func(error))
	// Expect announces a finish that FinishLater will queue shortly (its
	// call's answer is on its way to the client); call the returned func
	// once it is queued.
	Expect() (queued func())
	// Settled returns once every write queued or announced before it is
	// done.
	Settled(ctx context.Context) error
	BatchStats() BatchStats
	// WriteBatch writes ops in one transaction at once, outside the queue,
	// as described for BatchRunner: what the group commit does with each
	// batch, for tests and tools.
	WriteBatch(ctx context.Context, ops []Op) ([]ReserveResult, []error)
}

// RunAlone is what a BatchRunner does when its transaction failed for a
// reason other than an outage: each op is written again in a transaction
// of its own, so one bad op (an unknown key, a string the database
// refuses) fails alone.
func RunAlone(ctx context.Context, ops []Op, reserve func(context.Context, ReserveRequest) (ReserveResult, error),
	finish func(context.Context, Finish) error) ([]ReserveResult, []error) {
	results := make([]ReserveResult, len(ops))
	errs := make([]error, len(ops))
	for i, op := range ops {
		if op.Reserve != nil {
			results[i], errs[i] = reserve(ctx, *op.Reserve)
		} else {
			errs[i] = finish(ctx, *op.Finish)
		}
	}
	return results, errs
}

// FailAll gives every op of a batch the same error.
func FailAll(ops []Op, err error) ([]ReserveResult, []error) {
	errs := make([]error, len(ops))
	for i := range errs {
		errs[i] = err
	}
	return make([]ReserveResult, len(ops)), errs
}
