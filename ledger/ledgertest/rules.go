package ledgertest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// mustRules parses rules for a test key.
func (f *fixture) mustRules(s string) *rules.Rules {
	f.t.Helper()
	r, err := rules.Parse("rules", json.RawMessage(s))
	if err != nil {
		f.t.Fatalf("rules %s: %v", s, err)
	}
	return r
}

// moving builds a money-moving reservation on k for the once_per values.
func (f *fixture) moving(k ledger.Key, now time.Time, once ...string) ledger.ReserveRequest {
	return f.request(k, usd("1"), now, func(r *ledger.ReserveRequest) {
		r.MovesMoney = true
		if len(once) > 0 {
			r.OncePer, r.OnceValues = "customer", once
		}
	})
}

// reserveRule reserves and checks the outcome and, for a rule_denied, the
// rule; it returns the result.
func (f *fixture) reserveRule(r ledger.ReserveRequest, wantOutcome, wantRule string) ledger.ReserveResult {
	f.t.Helper()
	res := f.reserveReq(r, wantOutcome)
	if res.Rule != wantRule {
		f.t.Fatalf("Reserve(%s) rule = %q; want %q", r.CallID, res.Rule, wantRule)
	}
	return res
}

// testRulesStored: a key's rules come back as stored, from GetKey and
// KeyByHash; PATCH replaces them, and a zero Rules removes them.
func testRulesStored(f *fixture) {
	r := f.mustRules(`{"max_call_usd": 25, "max_calls": 60, "rate": "30/1m", "allow": {"customer": ["cus_A"]}, "once_per": "customer"}`)
	k := f.newKey(func(k *ledger.Key) { k.Rules = r })
	want, _ := json.Marshal(r)
	for what, got := range map[string]*rules.Rules{"GetKey": f.getKey(k.ID, t0).Rules, "KeyByHash": f.keyByHash(k).Rules} {
		b, _ := json.Marshal(got)
		if string(b) != string(want) {
			f.t.Fatalf("%s rules = %s; want %s", what, b, want)
		}
	}
	plain := f.newKey(nil)
	if got := f.getKey(plain.ID, t0).Rules; got != nil {
		f.t.Fatalf("a key without rules has %+v", got)
	}
	narrower := f.mustRules(`{"max_calls": 2}`)
	p, err := f.s.PatchKey(f.ctx, k.ID, ledger.KeyPatch{Rules: narrower})
	if err != nil || p.Rules == nil || p.Rules.MaxCalls == nil || *p.Rules.MaxCalls != 2 || p.Rules.OncePer != "" {
		f.t.Fatalf("PatchKey(rules) = %+v, %v", p.Rules, err)
	}
	// The patched rules hold at once: the once_per is gone, max_calls 2.
	f.reserveRule(f.moving(k, t0), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, t0), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, t0), ledger.OutcomeRuleDenied, rules.RuleMaxCalls)
	if p, err := f.s.PatchKey(f.ctx, k.ID, ledger.KeyPatch{Rules: &rules.Rules{}}); err != nil || p.Rules != nil {
		f.t.Fatalf("PatchKey(no rules) = %+v, %v", p.Rules, err)
	}
	f.reserveRule(f.moving(k, t0), ledger.OutcomeForwarded, "")
	if u := f.getKey(k.ID, t0); u.RuleCalls != 2 {
		f.t.Fatalf("rule calls %d; want 2 (a key without stateful rules counts nothing)", u.RuleCalls)
	}
}

func (f *fixture) keyByHash(k ledger.Key) ledger.Key {
	f.t.Helper()
	got, err := f.s.KeyByHash(f.ctx, k.Hash)
	if err != nil {
		f.t.Fatalf("KeyByHash(%s): %v", k.ID, err)
	}
	return got
}

// testRuleMaxCalls: max_calls counts money-moving forwarded calls. Free
// calls and true replays are not counted; a refusal is recorded with its
// rule and status 429; a released call (the vendor refused: no money
// moved) gives its count back.
func testRuleMaxCalls(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.Rules = f.mustRules(`{"max_calls": 2}`) })
	now := t0.Add(time.Minute)
	first := f.moving(k, now)
	first.IdempotencyKey, first.Fingerprint, first.ReplayWindow = "idem1", "print1", time.Hour
	f.reserveRule(first, ledger.OutcomeForwarded, "")
	f.settle(first.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: now})
	replay := f.moving(k, now)
	replay.IdempotencyKey, replay.Fingerprint, replay.ReplayWindow = "idem1", "print1", time.Hour
	f.reserveRule(replay, ledger.OutcomeIdempotentReplay, "")
	free := f.request(k, 0, now, nil) // a read: not money-moving
	f.reserveRule(free, ledger.OutcomeForwarded, "")
	second := f.moving(k, now)
	f.reserveRule(second, ledger.OutcomeForwarded, "")
	third := f.moving(k, now)
	f.reserveRule(third, ledger.OutcomeRuleDenied, rules.RuleMaxCalls)
	c := f.call(k.ID, third.CallID)
	if c.Rule != rules.RuleMaxCalls || c.StatusCode != 429 || c.CostState != ledger.CostNone || c.Reserved != 0 {
		f.t.Fatalf("refused call recorded as %+v", c)
	}
	if u := f.getKey(k.ID, now); u.RuleCalls != 2 || u.Reserved != usd("1") {
		f.t.Fatalf("after a refusal: rule calls %d, reserved %s; want 2, 1", u.RuleCalls, u.Reserved)
	}
	f.release(second.CallID, ledger.Settlement{StatusCode: 400, Now: now})
	if u := f.getKey(k.ID, now); u.RuleCalls != 1 {
		f.t.Fatalf("after a release: rule calls %d; want 1", u.RuleCalls)
	}
	f.reserveRule(f.moving(k, now), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, now), ledger.OutcomeRuleDenied, rules.RuleMaxCalls)
}

// testRuleRate: rate allows N money-moving calls in any trailing window;
// the refusal says when the oldest leaves it; a released call keeps its
// slot (the vendor saw it).
func testRuleRate(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.Rules = f.mustRules(`{"rate": "2/1m"}`) })
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	a := f.moving(k, at(0))
	f.reserveRule(a, ledger.OutcomeForwarded, "")
	f.release(a.CallID, ledger.Settlement{StatusCode: 402, Now: at(1)})
	f.reserveRule(f.moving(k, at(10)), ledger.OutcomeForwarded, "")
	res := f.reserveRule(f.moving(k, at(20)), ledger.OutcomeRuleDenied, rules.RuleRate)
	if res.RetryAfter != 40*time.Second {
		f.t.Fatalf("retry after %v; want 40s (the call at 0s leaves the window at 60s)", res.RetryAfter)
	}
	if c := f.call(k.ID, f.lastCallID()); c.StatusCode != 429 || c.Rule != rules.RuleRate {
		f.t.Fatalf("rate refusal recorded as %+v", c)
	}
	f.reserveRule(f.moving(k, at(59)), ledger.OutcomeRuleDenied, rules.RuleRate)
	f.reserveRule(f.moving(k, at(60)), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, at(61)), ledger.OutcomeRuleDenied, rules.RuleRate)
	f.reserveRule(f.moving(k, at(71)), ledger.OutcomeForwarded, "")
	// A free call is never limited.
	f.reserveRule(f.request(k, 0, at(72), nil), ledger.OutcomeForwarded, "")
}

// lastCallID is the id the fixture's last request got.
func (f *fixture) lastCallID() string { return fmt.Sprintf("call%06d", f.seq) }

// testRuleOncePer: one money-moving call per subject value; a released
// call gives its values back; a call whose values the gate read for
// another subject (a node's cache older than a PATCH), or with none, is
// refused; a call naming one claimed value among others is refused whole.
func testRuleOncePer(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.Rules = f.mustRules(`{"once_per": "customer"}`) })
	now := t0
	f.reserveRule(f.moving(k, now, "cus_A"), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, now, "cus_A"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	b := f.moving(k, now, "cus_B")
	f.reserveRule(b, ledger.OutcomeForwarded, "")
	f.release(b.CallID, ledger.Settlement{StatusCode: 402, Now: now})
	b2 := f.moving(k, now, "cus_B")
	f.reserveRule(b2, ledger.OutcomeForwarded, "")
	f.settle(b2.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: now})
	f.reserveRule(f.moving(k, now, "cus_B"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(f.moving(k, now, "cus_C", "cus_A"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(f.moving(k, now, "cus_C", "cus_D"), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, now, "cus_D"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	stale := f.moving(k, now, "cus_E")
	stale.OncePer = "currency"
	f.reserveRule(stale, ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(f.moving(k, now), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	// The minute's once_per refusals are one record, counting all six.
	refusals := f.auditAll(ledger.AuditFilter{KeyID: k.ID, Outcome: ledger.OutcomeRuleDenied})
	if len(refusals) != 1 || refusals[0].StatusCode != 403 || refusals[0].Rule != rules.RuleOncePer || refusals[0].Count != 6 {
		f.t.Fatalf("once_per refusals recorded as %+v; want one record, status 403, counting 6", refusals)
	}
	// Other keys' claims are their own.
	other := f.newKey(func(k *ledger.Key) { k.Rules = f.mustRules(`{"once_per": "customer"}`) })
	f.reserveRule(f.moving(other, now, "cus_A"), ledger.OutcomeForwarded, "")
}

// testRuleOncePerObject: a charge made in several calls (an intent
// created, then confirmed or captured) is one charge for once_per. A call
// on an object goes on with the values a call on that same object claimed;
// a call on another object, a create, or a call on an object whose
// creating call has not told its id yet is refused by them. A value the
// object's calls had not claimed is claimed anew, and a released follow-up
// leaves the first call's claim in place.
func testRuleOncePerObject(f *fixture) {
	k := f.newKey(func(k *ledger.Key) { k.Rules = f.mustRules(`{"once_per": "customer"}`) })
	now := t0
	onObject := func(object string, once ...string) ledger.ReserveRequest {
		r := f.moving(k, now, once...)
		r.Object = object
		return r
	}
	create := f.moving(k, now, "cus_A")
	f.reserveRule(create, ledger.OutcomeForwarded, "")
	// Its object is not known until it is settled.
	f.reserveRule(onObject("pi_1", "cus_A"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.settle(create.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), VendorTxnID: "pi_1", Now: now})

	confirm := onObject("pi_1", "cus_A")
	f.reserveRule(confirm, ledger.OutcomeForwarded, "")
	f.release(confirm.CallID, ledger.Settlement{StatusCode: 402, Now: now})
	capture := onObject("pi_1", "cus_A")
	f.reserveRule(capture, ledger.OutcomeForwarded, "")
	f.settle(capture.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), VendorTxnID: "pi_1", Now: now})
	// The released confirm gave back nothing of the create's claim.
	f.reserveRule(f.moving(k, now, "cus_A"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(onObject("pi_2", "cus_A"), ledger.OutcomeRuleDenied, rules.RuleOncePer)

	// The intent moved to another customer: that one is claimed now, by
	// the call on the intent, and is the intent's too.
	moved := onObject("pi_1", "cus_B")
	f.reserveRule(moved, ledger.OutcomeForwarded, "")
	f.settle(moved.CallID, ledger.Settlement{StatusCode: 200, Cost: usd("1"), VendorTxnID: "pi_1", Now: now})
	f.reserveRule(f.moving(k, now, "cus_B"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(onObject("pi_1", "cus_A", "cus_B"), ledger.OutcomeForwarded, "")
	f.reserveRule(onObject("pi_3", "cus_B", "cus_C"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(onObject("pi_3", "cus_C"), ledger.OutcomeForwarded, "")
}

// testRuleSummary: the summary counts refusals by rule.
func testRuleSummary(f *fixture) {
	k := f.newKey(func(k *ledger.Key) {
		k.RunLabel = "run/rules"
		k.Rules = f.mustRules(`{"max_calls": 2, "once_per": "customer"}`)
	})
	f.reserveRule(f.moving(k, t0, "cus_A"), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, t0, "cus_A"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(f.moving(k, t0, "cus_A"), ledger.OutcomeRuleDenied, rules.RuleOncePer)
	f.reserveRule(f.moving(k, t0, "cus_B"), ledger.OutcomeForwarded, "")
	f.reserveRule(f.moving(k, t0, "cus_C"), ledger.OutcomeRuleDenied, rules.RuleMaxCalls)
	if err := f.s.RecordRefusal(f.ctx, ledger.Call{CallID: "refusedAllow", KeyID: k.ID, RunLabel: k.RunLabel, Vendor: "stripe",
		Method: "POST", Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", StatusCode: 403,
		Outcome: ledger.OutcomeRuleDenied, Rule: rules.RuleAllow, CostState: ledger.CostNone, StartedAt: t0}); err != nil {
		f.t.Fatalf("RecordRefusal: %v", err)
	}
	rows, err := f.s.Summary(f.ctx, ledger.SummaryFilter{RunLabel: "run/rules"})
	if err != nil {
		f.t.Fatalf("Summary: %v", err)
	}
	got := map[string]int64{}
	for _, r := range rows {
		got[r.Outcome+"/"+r.Rule] += r.Calls
	}
	want := map[string]int64{"forwarded/": 2, "rule_denied/once_per": 2, "rule_denied/max_calls": 1, "rule_denied/allow": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Fatalf("summary by outcome/rule = %v; want %v", got, want)
	}
	if c := f.call(k.ID, "refusedAllow"); c.Rule != rules.RuleAllow {
		f.t.Fatalf("recorded refusal's rule = %q", c.Rule)
	}
}

// testConcurrentRules: many callers race on one key: never more than
// max_calls, never two calls for one once_per value, never more than rate
// in a window.
func testConcurrentRules(f *fixture) {
	now := t0.Add(time.Hour)
	race := func(rule string, n int, once func(i int) string) raceResult {
		k := f.newKey(func(k *ledger.Key) { k.Rules = f.mustRules(rule) })
		reqs := make([]ledger.ReserveRequest, n)
		for i := range reqs {
			if once != nil {
				reqs[i] = f.moving(k, now, once(i))
			} else {
				reqs[i] = f.moving(k, now.Add(time.Duration(i)*time.Millisecond))
			}
			reqs[i].Estimate = usd("0.01")
		}
		return f.raceReserve(reqs)
	}
	if res := race(`{"max_calls": 37}`, concurrentCalls, nil); res.forwarded != 37 || res.ruleDenied[rules.RuleMaxCalls] != concurrentCalls-37 {
		f.t.Fatalf("max_calls 37: forwarded %d, refused %v", res.forwarded, res.ruleDenied)
	}
	if res := race(`{"rate": "10/1m"}`, concurrentCalls, nil); res.forwarded != 10 || res.ruleDenied[rules.RuleRate] != concurrentCalls-10 {
		f.t.Fatalf("rate 10/1m: forwarded %d, refused %v", res.forwarded, res.ruleDenied)
	}
	// The seed's story: 50 customers behind 500 ids with duplicates.
	res := race(`{"once_per": "customer"}`, concurrentCalls, func(i int) string { return fmt.Sprintf("cus_%02d", (i*7)%50) })
	if res.forwarded != 50 || res.ruleDenied[rules.RuleOncePer] != concurrentCalls-50 {
		f.t.Fatalf("once_per customer: forwarded %d, refused %v", res.forwarded, res.ruleDenied)
	}
}
