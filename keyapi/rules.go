package keyapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/rules"
)

// parseRules reads the rules of a key (field "rules") or a policy
// ("policy.rules"); a bad one is a 400 naming its field.
func parseRules(field string, raw json.RawMessage) (*rules.Rules, error) {
	r, err := rules.Parse(field, raw)
	var fe *rules.FieldError
	if errors.As(err, &fe) {
		return nil, invalidField(fe.Field, fe.Error())
	}
	if err != nil {
		return nil, invalidField(field, err.Error())
	}
	if r.IsZero() {
		return nil, nil
	}
	return r, nil
}

// checkSubjects refuses a key's rule naming a subject its vendor's calls
// never carry: such a key would be refused every money-moving call.
func (h *Handler) checkSubjects(vendor string, r *rules.Rules) error {
	names, ok := h.subjects[vendor]
	if !ok {
		return nil
	}
	if rule, subject := r.UnknownSubject(names); rule != "" {
		field := "rules." + rule
		return invalidField(field, fmt.Sprintf("%s: %s calls carry no subject %q (they carry: %s)", field, vendor, subject, strings.Join(names, ", ")))
	}
	return nil
}

// withinPolicy checks a key's rules against its issuer's policy: a key may
// only be narrower (403 policy_violation naming the wider rule).
func (p *policy) withinPolicy(r *rules.Rules) error {
	if p == nil || p.rules == nil {
		return nil
	}
	if wider, ok := r.NarrowerThan(p.rules); !ok {
		return violation("rules."+wider, "rules.%s is wider than this token's policy allows (policy rules: %s)", wider, rulesJSON(p.rules))
	}
	return nil
}

func rulesJSON(r *rules.Rules) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// patchRules reads the rules of a PATCH: they replace the key's, and must
// be narrower than them unless an admin widens them, and within the
// caller's policy. A zero Rules (PATCH "rules": {} or null) removes them.
func (h *Handler) patchRules(r *http.Request, cur ledger.KeyUsage, raw json.RawMessage) (*rules.Rules, error) {
	next, err := parseRules("rules", raw)
	if err != nil {
		return nil, err
	}
	if err := h.checkSubjects(cur.Vendor, next); err != nil {
		return nil, err
	}
	p := principalOf(r)
	if p.Role != RoleAdmin {
		if wider, ok := next.NarrowerThan(cur.Rules); !ok {
			return nil, &apiError{Status: http.StatusForbidden, Code: codePolicyViolation, Field: "rules." + wider,
				Message: fmt.Sprintf("rules.%s would widen the key's rules: PATCH only narrows them (an admin may widen)", wider)}
		}
	}
	if err := p.Policy.withinPolicy(next); err != nil {
		return nil, err
	}
	if next == nil {
		return &rules.Rules{}, nil
	}
	return next, nil
}
