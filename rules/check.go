package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keybrake/keybrake/money"
)

// Check decides the stateless rules for one call: its reservation
// (estimate) against max_call_usd, every allow list against the call's
// subjects, and that the subject once_per names is there (the ledger then
// claims its values). A rule naming a subject the call does not carry
// refuses the call: an unreadable subject is not a pass. nil means the
// call may go on to the ledger.
func (r *Rules) Check(subjects Subjects, estimate money.Micros) *Denial {
	if r == nil {
		return nil
	}
	if r.MaxCallUSD != nil && estimate > *r.MaxCallUSD {
		return &Denial{Rule: RuleMaxCallUSD, Message: fmt.Sprintf(
			"This call would reserve $%s, more than this vault key's max_call_usd of $%s.", estimate.Dollars(), r.MaxCallUSD.Dollars())}
	}
	for _, subject := range sortedKeys(r.Allow) {
		vals := subjects[subject]
		if len(vals) == 0 {
			return &Denial{Rule: RuleAllow, Subject: subject, Message: fmt.Sprintf(
				"This vault key allows only listed %s values, and Keybrake cannot read a %s from this call.", subject, subject)}
		}
		for _, v := range vals {
			if !Matches(r.Allow[subject], v) {
				return &Denial{Rule: RuleAllow, Subject: subject, Message: fmt.Sprintf(
					"This vault key does not allow %s %s.", subject, quoteValue(v))}
			}
		}
	}
	if r.OncePer != "" && len(subjects[r.OncePer]) == 0 {
		return &Denial{Rule: RuleOncePer, Subject: r.OncePer, Message: fmt.Sprintf(
			"This vault key allows one call per %s, and Keybrake cannot read a %s from this call.", r.OncePer, r.OncePer)}
	}
	return nil
}

// Matches reports whether v is allowed by one of the entries: equal to it,
// or prefixed by an entry ending in "*".
func Matches(entries []string, v string) bool {
	for _, e := range entries {
		if p, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(v, p) {
				return true
			}
		} else if e == v {
			return true
		}
	}
	return false
}

// quoteValue bounds a value shown back in a refusal.
func quoteValue(v string) string {
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	return fmt.Sprintf("%q", v)
}

// OnceValues are the values of the call's once_per subject the ledger
// claims, without repeats; nil without a once_per rule.
func (r *Rules) OnceValues(subjects Subjects) []string {
	if r == nil || r.OncePer == "" {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, v := range subjects[r.OncePer] {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// UnknownSubject returns the first rule of r naming a subject not in known
// ("allow.to_country" or "once_per") and that subject; "" when every
// subject r names is known. A key whose rule names a subject its vendor's
// calls never carry would be refused every money-moving call.
func (r *Rules) UnknownSubject(known []string) (rule, subject string) {
	if r == nil {
		return "", ""
	}
	for _, s := range sortedKeys(r.Allow) {
		if !slices.Contains(known, s) {
			return RuleAllow + "." + s, s
		}
	}
	if r.OncePer != "" && !slices.Contains(known, r.OncePer) {
		return RuleOncePer, r.OncePer
	}
	return "", ""
}
