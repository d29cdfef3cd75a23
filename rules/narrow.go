package rules

import (
	"sort"
	"strings"
	"time"
)

// NarrowerThan reports whether r allows nothing that bound does not: every
// rule bound sets, r sets too, no wider (lower numbers, a rate no faster
// over bound's window, allow lists covered by bound's, the same once_per).
// When r is wider it returns the first rule that is, as a policy violation
// names it ("max_call_usd", "allow.customer").
func (r *Rules) NarrowerThan(bound *Rules) (wider string, ok bool) {
	if bound.IsZero() {
		return "", true
	}
	if r == nil {
		r = &Rules{}
	}
	if bound.MaxCallUSD != nil && (r.MaxCallUSD == nil || *r.MaxCallUSD > *bound.MaxCallUSD) {
		return RuleMaxCallUSD, false
	}
	if bound.MaxCalls != nil && (r.MaxCalls == nil || *r.MaxCalls > *bound.MaxCalls) {
		return RuleMaxCalls, false
	}
	if bound.Rate != nil && (r.Rate == nil || !r.Rate.within(*bound.Rate)) {
		return RuleRate, false
	}
	for _, subject := range sortedKeys(bound.Allow) {
		list, ok := r.Allow[subject]
		if !ok {
			return RuleAllow + "." + subject, false
		}
		for _, v := range list {
			if !covers(bound.Allow[subject], v) {
				return RuleAllow + "." + subject, false
			}
		}
	}
	if bound.OncePer != "" && r.OncePer != bound.OncePer {
		return RuleOncePer, false
	}
	return "", true
}

// within reports whether r lets no more calls through in any window of
// b's length than b does: in b.Window, r allows at most
// r.Calls * ceil(b.Window / r.Window) calls.
func (r Rate) within(b Rate) bool {
	windows := int64((b.Window + r.Window - time.Nanosecond) / r.Window)
	if windows < 1 {
		windows = 1
	}
	return r.Calls <= b.Calls/windows
}

// covers reports whether the entries allow every value entry v matches: v
// itself is one of them, or a prefix entry covers it (a prefix entry v
// needs a prefix entry at most as long).
func covers(entries []string, v string) bool {
	vp, vIsPrefix := strings.CutSuffix(v, "*")
	for _, e := range entries {
		ep, eIsPrefix := strings.CutSuffix(e, "*")
		switch {
		case eIsPrefix && strings.HasPrefix(vp, ep):
			return true
		case !eIsPrefix && !vIsPrefix && e == v:
			return true
		}
	}
	return false
}

// Or returns r, or def when r restricts nothing: a vendor's default_rules
// apply to the keys that set none.
func Or(r, def *Rules) *Rules {
	if r.IsZero() {
		return def
	}
	return r
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
