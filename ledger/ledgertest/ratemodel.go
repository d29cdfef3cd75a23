package ledgertest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// rateModel is what a rate rule means, kept the long way: every forwarded
// call's time, and a call goes ahead unless N of them are in its trailing
// window (now - W, now].
type rateModel struct {
	n      int
	window time.Duration
	stamps []time.Time
}

// decide returns whether a call at now goes ahead and, if not, how long
// until the oldest call of the window leaves it.
func (m *rateModel) decide(now time.Time) (bool, time.Duration) {
	var in []time.Time
	for _, s := range m.stamps {
		if s.After(now.Add(-m.window)) {
			in = append(in, s)
		}
	}
	if len(in) < m.n {
		return true, 0
	}
	return false, in[len(in)-m.n].Add(m.window).Sub(now)
}

// testRuleRateModel: a seeded walk of money-moving calls over a few keys
// with rate rules, alone and in batches, with releases (which keep their
// slot), free calls and PATCHes of the rate's N (same window), against
// rateModel: every decision and every Retry-After as the model says. The
// keys' N are small, so their slots are reused many times over.
func testRuleRateModel(f *fixture) {
	_, batched := f.s.(ledger.Batcher)
	rng := rand.New(rand.NewPCG(18, 20))
	type rateKey struct {
		key       ledger.Key
		model     *rateModel
		forwarded []string
	}
	windows := []time.Duration{10 * time.Second, time.Minute}
	var keys []*rateKey
	for i := range 4 {
		n, w := 1+rng.IntN(4), windows[i%len(windows)]
		k := f.newKey(func(k *ledger.Key) {
			k.TotalCap = capOf("100000")
			k.Rules = f.mustRules(fmt.Sprintf(`{"rate": "%d/%s"}`, n, rateWindow(w)))
		})
		keys = append(keys, &rateKey{key: k, model: &rateModel{n: n, window: w}})
	}
	now := t0.Add(time.Hour)
	check := func(step int, k *rateKey, r ledger.ReserveRequest, res ledger.ReserveResult, err error) {
		f.t.Helper()
		if err != nil {
			f.t.Fatalf("step %d: Reserve(%s): %v", step, r.CallID, err)
		}
		ok, wait := k.model.decide(r.Now)
		switch {
		case ok && res.Outcome != ledger.OutcomeForwarded:
			f.t.Fatalf("step %d: key %s (rate %d/%s) at %s: %s %q; the model forwards it",
				step, k.key.ID, k.model.n, k.model.window, r.Now.Sub(t0), res.Outcome, res.Rule)
		case !ok && (res.Outcome != ledger.OutcomeRuleDenied || res.Rule != rules.RuleRate):
			f.t.Fatalf("step %d: key %s (rate %d/%s) at %s: %s %q; the model refuses it (rate)",
				step, k.key.ID, k.model.n, k.model.window, r.Now.Sub(t0), res.Outcome, res.Rule)
		case !ok && res.RetryAfter != wait:
			f.t.Fatalf("step %d: key %s: retry after %v; the model says %v", step, k.key.ID, res.RetryAfter, wait)
		}
		if ok {
			k.model.stamps = append(k.model.stamps, r.Now)
			k.forwarded = append(k.forwarded, r.CallID)
		}
	}
	for step := range 600 {
		now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
		k := keys[rng.IntN(len(keys))]
		switch p := rng.IntN(100); {
		case p < 60:
			r := f.moving(k.key, now)
			res, err := f.s.Reserve(f.ctx, r)
			check(step, k, r, res, err)
		case p < 80 && batched:
			// A batch of calls of several keys, each at its own time, in
			// arrival order; the batch decides them one after another.
			var ops []ledger.Op
			var of []*rateKey
			for range 1 + rng.IntN(6) {
				bk := keys[rng.IntN(len(keys))]
				now = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
				ops = append(ops, reserveOp(f.moving(bk.key, now)))
				of = append(of, bk)
			}
			res, errs := f.writeBatch(ops)
			for i := range ops {
				check(step, of[i], *ops[i].Reserve, res[i], errs[i])
			}
		case p < 88 && len(k.forwarded) > 0:
			// The vendor refused a forwarded call: released, its slot kept.
			id := k.forwarded[rng.IntN(len(k.forwarded))]
			if c := f.call(k.key.ID, id); c.CostState == ledger.CostReserved {
				f.release(id, ledger.Settlement{StatusCode: 402, Now: now})
			}
		case p < 94:
			n := 1 + rng.IntN(5)
			if _, err := f.s.PatchKey(f.ctx, k.key.ID, ledger.KeyPatch{
				Rules: f.mustRules(fmt.Sprintf(`{"rate": "%d/%s"}`, n, rateWindow(k.model.window))),
			}); err != nil {
				f.t.Fatalf("step %d: PatchKey: %v", step, err)
			}
			k.model.n = n
		default:
			// A free call is never limited nor counted.
			f.reserveRule(f.request(k.key, 0, now, nil), ledger.OutcomeForwarded, "")
		}
	}
	// Taking the rate away keeps what was counted; calls made without it
	// are not counted; the rate put back (same window) decides from what
	// was kept.
	k := keys[0]
	if _, err := f.s.PatchKey(f.ctx, k.key.ID, ledger.KeyPatch{Rules: &rules.Rules{}}); err != nil {
		f.t.Fatalf("PatchKey (no rules): %v", err)
	}
	for range 3 {
		f.reserveRule(f.moving(k.key, now), ledger.OutcomeForwarded, "")
	}
	if _, err := f.s.PatchKey(f.ctx, k.key.ID, ledger.KeyPatch{
		Rules: f.mustRules(fmt.Sprintf(`{"rate": "1/%s"}`, rateWindow(k.model.window))),
	}); err != nil {
		f.t.Fatalf("PatchKey (rate again): %v", err)
	}
	k.model.n = 1
	for _, at := range []time.Time{now, now, now.Add(k.model.window), now.Add(k.model.window)} {
		r := f.moving(k.key, at)
		res, err := f.s.Reserve(f.ctx, r)
		check(-1, k, r, res, err)
	}
}

// rateWindow writes a window the way a rate rule spells it.
func rateWindow(w time.Duration) string {
	if w%time.Minute == 0 {
		return fmt.Sprintf("%dm", w/time.Minute)
	}
	return fmt.Sprintf("%ds", w/time.Second)
}
