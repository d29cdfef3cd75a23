package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ruleFlags are the flags of a key's rules (docs/rules.md), shared by
// issue and patch.
type ruleFlags struct {
	maxCallUSD, rate, oncePer *string
	maxCalls                  *string
	allow                     listFlag
}

func addRuleFlags(f *flags) *ruleFlags {
	r := &ruleFlags{
		maxCallUSD: f.String("max-call-usd", "", "rule: no single call may reserve more, in USD"),
		maxCalls:   f.String("max-calls", "", "rule: money-moving calls over the key's life"),
		rate:       f.String("rate", "", "rule: at most N money-moving calls in any trailing window, e.g. 30/1m"),
		oncePer:    f.String("once-per", "", "rule: one money-moving call per value of this subject, e.g. customer"),
	}
	f.Var(&r.allow, "allow", "rule: SUBJECT=V1,V2 allowed values of a subject, e.g. customer=cus_A,cus_B or to=+1415* (repeatable)")
	return r
}

// any reports whether a rule flag was given.
func (r *ruleFlags) any(f *flags) bool {
	for _, name := range []string{"max-call-usd", "max-calls", "rate", "once-per", "allow"} {
		if f.set(name) {
			return true
		}
	}
	return false
}

// apply sets the given rule flags on rules (a key's current rules, for
// patch, or an empty map), checking their form; the server validates the
// rest.
func (r *ruleFlags) apply(rules map[string]any) error {
	if *r.maxCallUSD != "" {
		n, err := usd("max-call-usd", *r.maxCallUSD)
		if err != nil {
			return err
		}
		rules["max_call_usd"] = n
	}
	if *r.maxCalls != "" {
		n, err := strconv.ParseInt(*r.maxCalls, 10, 64)
		if err != nil || n < 1 {
			return &usageError{msg: fmt.Sprintf("--max-calls %q: want a whole number of 1 or more", *r.maxCalls)}
		}
		rules["max_calls"] = n
	}
	if *r.rate != "" {
		rules["rate"] = *r.rate
	}
	if *r.oncePer != "" {
		rules["once_per"] = *r.oncePer
	}
	if len(r.allow) > 0 {
		allow, _ := rules["allow"].(map[string]any)
		if allow == nil {
			allow = map[string]any{}
		}
		for _, a := range r.allow {
			subject, values, ok := strings.Cut(a, "=")
			if !ok || subject == "" || values == "" {
				return &usageError{msg: fmt.Sprintf("--allow %q: want SUBJECT=V1,V2, e.g. customer=cus_A,cus_B", a)}
			}
			allow[subject] = strings.Split(values, ",")
		}
		rules["allow"] = allow
	}
	return nil
}

// patchedRules are a key's current rules with the given flags applied: a
// PATCH replaces the rules whole, so the ones not given are kept.
func patchedRules(c *ctx, keyID string, r *ruleFlags) (map[string]any, error) {
	raw, err := c.call("GET", "/vault/keys/"+url.PathEscape(keyID), nil)
	if err != nil {
		return nil, err
	}
	var cur struct {
		Rules map[string]any `json:"rules"`
	}
	if err := json.Unmarshal(raw, &cur); err != nil {
		return nil, fmt.Errorf("reading the key's rules: %w", err)
	}
	if cur.Rules == nil {
		cur.Rules = map[string]any{}
	}
	return cur.Rules, r.apply(cur.Rules)
}
