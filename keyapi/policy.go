package keyapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
)

// policyRequest is a token's issuing policy as POST /vault/tokens takes it
// (and as the ledger stores it, normalised). Every field is optional; an
// absent one does not bound.
type policyRequest struct {
	Vendors          []string         `json:"vendors"`
	MaxKeyUSD        json.RawMessage  `json:"max_key_usd"`
	MaxTTL           *string          `json:"max_ttl"`
	AllowedEndpoints []string         `json:"allowed_endpoints"`
	RunLabelPrefix   string           `json:"run_label_prefix"`
	DailyUSDCap      json.RawMessage  `json:"daily_usd_cap"`
	TotalUSDCap      json.RawMessage  `json:"total_usd_cap"`
	Approval         *approvalRequest `json:"approval"`
	Rules            json.RawMessage  `json:"rules"`
}

// policy is a validated policyRequest: the bounds on the keys an issuer
// token may issue or patch, and its budget over them.
type policy struct {
	vendors   []string      // nil: any configured vendor
	maxKey    *money.Micros // nil: no bound
	maxTTL    time.Duration // 0: no bound beyond the API's
	maxTTLRaw string
	endpoints []string // nil: no bound
	allow     allowlist.List
	prefix    string
	dailyCap  *money.Micros // the budget
	totalCap  *money.Micros
	rules     *rules.Rules         // a bound: keys' rules only narrower; nil none
	approval  *ledger.ApprovalRule // the rule every key gets at least
}

// policyView is a policy as the API shows and the ledger stores it.
type policyView struct {
	Vendors          []string         `json:"vendors"`
	MaxKeyUSD        *money.Micros    `json:"max_key_usd"`
	MaxTTL           *string          `json:"max_ttl"`
	AllowedEndpoints []string         `json:"allowed_endpoints"`
	RunLabelPrefix   string           `json:"run_label_prefix"`
	DailyUSDCap      *money.Micros    `json:"daily_usd_cap"`
	TotalUSDCap      *money.Micros    `json:"total_usd_cap"`
	Approval         *approvalRequest `json:"approval,omitempty"`
	Rules            *rules.Rules     `json:"rules,omitempty"`
}

func (p *policy) view() policyView {
	v := policyView{Vendors: p.vendors, MaxKeyUSD: p.maxKey, AllowedEndpoints: p.endpoints,
		RunLabelPrefix: p.prefix, DailyUSDCap: p.dailyCap, TotalUSDCap: p.totalCap, Approval: approvalRequestOf(p.approval),
		Rules: p.rules}
	if p.maxTTLRaw != "" {
		v.MaxTTL = &p.maxTTLRaw
	}
	return v
}

// parsePolicy validates a policy. known, when set, are the vendors a
// policy may name (the configured ones); a stored policy is read back
// without it.
func parsePolicy(req policyRequest, known map[string]bool) (*policy, error) {
	p := &policy{}
	for i, v := range req.Vendors {
		if known != nil && !known[v] {
			return nil, invalidField(fmt.Sprintf("policy.vendors[%d]", i), fmt.Sprintf("unknown vendor %q", v))
		}
		if !slices.Contains(p.vendors, v) {
			p.vendors = append(p.vendors, v)
		}
	}
	if req.Vendors != nil && p.vendors == nil {
		p.vendors = []string{} // an empty list allows no vendor
	}
	var err error
	if p.maxKey, err = parseCap("policy.max_key_usd", req.MaxKeyUSD); err != nil {
		return nil, err
	}
	if req.MaxTTL != nil {
		d, err := parseDuration(*req.MaxTTL)
		if err != nil || d <= 0 {
			return nil, invalidField("policy.max_ttl", `policy.max_ttl must be a positive duration such as "6h"`)
		}
		p.maxTTL, p.maxTTLRaw = d, *req.MaxTTL
	}
	if req.AllowedEndpoints != nil {
		p.endpoints = []string{}
		for i, e := range req.AllowedEndpoints {
			field := fmt.Sprintf("policy.allowed_endpoints[%d]", i)
			norm, err := allowlist.Normalize(e)
			if err != nil {
				return nil, invalidField(field, field+": "+err.Error())
			}
			if !slices.Contains(p.endpoints, norm) {
				p.endpoints = append(p.endpoints, norm)
			}
		}
		if p.allow, err = allowlist.Parse(p.endpoints); err != nil {
			return nil, invalidField("policy.allowed_endpoints", "policy.allowed_endpoints: "+err.Error())
		}
	}
	if err := checkLabel("policy.run_label_prefix", req.RunLabelPrefix); err != nil {
		return nil, err
	}
	p.prefix = req.RunLabelPrefix
	if p.dailyCap, err = parseCap("policy.daily_usd_cap", req.DailyUSDCap); err != nil {
		return nil, err
	}
	if p.totalCap, err = parseCap("policy.total_usd_cap", req.TotalUSDCap); err != nil {
		return nil, err
	}
	if p.approval, err = parseApproval("policy.approval", req.Approval); err != nil {
		return nil, err
	}
	if p.rules, err = parseRules("policy.rules", req.Rules); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeStoredPolicy reads a token's stored policy; nil for none.
func decodeStoredPolicy(raw json.RawMessage) (*policy, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var req policyRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("reading a stored token policy: %w", err)
	}
	p, err := parsePolicy(req, nil)
	if err != nil {
		return nil, fmt.Errorf("reading a stored token policy: %w", err)
	}
	return p, nil
}

// violation is a 403 policy_violation naming the bound.
func violation(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: codePolicyViolation, Field: field,
		Message: fmt.Sprintf(format, args...)}
}

// checkKey checks a key as it would be (issued, or patched) against the
// policy: its vendor, caps, time to live from now, allowlist and run label.
func (p *policy) checkKey(vendor string, dailyCap, totalCap *money.Micros, ttl time.Duration, endpoints []string, label string) error {
	if p == nil {
		return nil
	}
	if p.vendors != nil && !slices.Contains(p.vendors, vendor) {
		return violation("vendor", "vendor %q is outside this token's policy (vendors: %s)", vendor, strings.Join(p.vendors, ", "))
	}
	if p.maxKey != nil {
		if totalCap == nil {
			return violation("total_usd_cap", "this token's policy has max_key_usd %s: total_usd_cap is required and at most that",
				p.maxKey.Dollars())
		}
		if *totalCap > *p.maxKey {
			return violation("total_usd_cap", "total_usd_cap %s is above this token's max_key_usd %s",
				totalCap.Dollars(), p.maxKey.Dollars())
		}
		if dailyCap != nil && *dailyCap > *p.maxKey {
			return violation("daily_usd_cap", "daily_usd_cap %s is above this token's max_key_usd %s",
				dailyCap.Dollars(), p.maxKey.Dollars())
		}
	}
	if p.maxTTL > 0 && ttl > p.maxTTL {
		return violation("expires_in", "expires_in %s is above this token's max_ttl %s", ttl, p.maxTTLRaw)
	}
	if p.endpoints != nil {
		for i, e := range endpoints {
			if !p.allow.Covers(e) {
				return violation(fmt.Sprintf("allowed_endpoints[%d]", i),
					"allowed_endpoints[%d] %q is outside this token's allowed_endpoints (%s)", i, e, strings.Join(p.endpoints, ", "))
			}
		}
	}
	if !strings.HasPrefix(label, p.prefix) {
		return violation("agent_run_label", "agent_run_label %q does not start with this token's run_label_prefix %q", label, p.prefix)
	}
	return nil
}
