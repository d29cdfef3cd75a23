package keyapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
)

const maxMetadataBytes = 8 << 10

// createKeyRequest is the body of POST /vault/keys. Caps and metadata are
// kept raw so each is parsed exactly (money never passes through a float)
// and a bad value is reported against its own field.
type createKeyRequest struct {
	Vendor           string           `json:"vendor"`
	DailyUSDCap      json.RawMessage  `json:"daily_usd_cap"`
	TotalUSDCap      json.RawMessage  `json:"total_usd_cap"`
	AllowedEndpoints []string         `json:"allowed_endpoints"`
	ExpiresIn        *string          `json:"expires_in"`
	AgentRunLabel    string           `json:"agent_run_label"`
	Metadata         json.RawMessage  `json:"metadata"`
	Approval         *approvalRequest `json:"approval"`
	Rules            json.RawMessage  `json:"rules"`
}

// keySpec is a validated createKeyRequest.
type keySpec struct {
	vendor    string
	dailyCap  *money.Micros
	totalCap  *money.Micros
	ttl       time.Duration
	endpoints []string
	label     string
	metadata  json.RawMessage
	rules     *rules.Rules
}

// validateCreate checks a request and reports the first bad field.
func (h *Handler) validateCreate(req *createKeyRequest) (keySpec, error) {
	var spec keySpec
	var err error

	if req.Vendor == "" {
		return spec, missingField("vendor")
	}
	if !h.vendors[req.Vendor] {
		if len(h.vendorList) == 0 {
			return spec, invalidField("vendor", "no vendors are configured")
		}
		return spec, invalidField("vendor", fmt.Sprintf("unknown vendor %q; configured vendors: %s",
			req.Vendor, strings.Join(h.vendorList, ", ")))
	}
	spec.vendor = req.Vendor

	if spec.dailyCap, err = parseCap("daily_usd_cap", req.DailyUSDCap); err != nil {
		return spec, err
	}
	if spec.totalCap, err = parseCap("total_usd_cap", req.TotalUSDCap); err != nil {
		return spec, err
	}
	if spec.dailyCap == nil && spec.totalCap == nil {
		return spec, &apiError{Status: http.StatusBadRequest, Code: codeParameterMissing, Field: "total_usd_cap",
			Message: "at least one of daily_usd_cap and total_usd_cap is required"}
	}

	spec.ttl = h.defaultTTL
	if req.ExpiresIn != nil {
		d, err := parseDuration(*req.ExpiresIn)
		if err != nil {
			return spec, invalidField("expires_in", `expires_in must be a duration such as "30m", "2h" or "1d"`)
		}
		if d <= 0 {
			return spec, invalidField("expires_in", "expires_in must be greater than 0")
		}
		if d > h.maxTTL {
			return spec, invalidField("expires_in", fmt.Sprintf("expires_in must be at most %s", h.maxTTL))
		}
		spec.ttl = d
	}

	if len(req.AllowedEndpoints) > allowlist.MaxEntries {
		return spec, invalidField("allowed_endpoints", fmt.Sprintf("allowed_endpoints has more than %d entries", allowlist.MaxEntries))
	}
	spec.endpoints = make([]string, 0, len(req.AllowedEndpoints))
	seen := map[string]bool{}
	for i, e := range req.AllowedEndpoints {
		norm, err := allowlist.Normalize(e)
		if err != nil {
			field := fmt.Sprintf("allowed_endpoints[%d]", i)
			return spec, invalidField(field, field+": "+err.Error())
		}
		if !seen[norm] {
			seen[norm] = true
			spec.endpoints = append(spec.endpoints, norm)
		}
	}

	if err := checkLabel("agent_run_label", req.AgentRunLabel); err != nil {
		return spec, err
	}
	spec.label = req.AgentRunLabel

	if spec.metadata, err = parseMetadata(req.Metadata); err != nil {
		return spec, err
	}
	if spec.rules, err = parseRules("rules", req.Rules); err != nil {
		return spec, err
	}
	if spec.rules == nil {
		spec.rules = h.defaults[spec.vendor]
	}
	if err := h.checkSubjects(spec.vendor, spec.rules); err != nil {
		return spec, err
	}
	return spec, nil
}

// parseCap parses a USD cap exactly: a JSON number (or numeric string) of
// dollars, > 0, at most six decimals, no sign or exponent. Absent or null
// means no cap.
func parseCap(field string, raw json.RawMessage) (*money.Micros, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalidField(field, field+" must be a number of US dollars")
		}
	}
	m, err := money.ParseUSD(s)
	if err != nil {
		if rounded, ok := roundTo6(s); ok {
			// Typically a cap computed in a script with floats
			// (1999*20/100*1.1 = 439.78000000000003).
			return nil, invalidField(field, fmt.Sprintf(
				"%s %s has more than 6 decimals (computed with floating point?): round it to 6 decimals, e.g. %s (JavaScript: Math.round(x * 1e6) / 1e6; Python: round(x, 6))",
				field, s, rounded))
		}
		return nil, invalidField(field, fmt.Sprintf(
			"%s must be a positive number of US dollars with at most 6 decimals, no exponent, up to %d", field, money.MaxUSD))
	}
	if m <= 0 {
		return nil, invalidField(field, field+" must be greater than 0")
	}
	return &m, nil
}

// checkLabel accepts an optional run label: valid UTF-8, printable, at most
// maxLabelLength characters.
func checkLabel(field, s string) error {
	if !utf8.ValidString(s) {
		return invalidField(field, field+" must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) > maxLabelLength {
		return invalidField(field, fmt.Sprintf("%s must be at most %d characters", field, maxLabelLength))
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return invalidField(field, field+" must contain only printable characters")
		}
	}
	return nil
}

// parseMetadata accepts a JSON object of at most maxMetadataBytes
// (compacted); absent or null means none.
func parseMetadata(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, invalidField("metadata", "metadata must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, invalidField("metadata", "metadata must be a JSON object")
	}
	if buf.Len() > maxMetadataBytes {
		return nil, invalidField("metadata", fmt.Sprintf("metadata must be at most %d bytes", maxMetadataBytes))
	}
	return json.RawMessage(buf.Bytes()), nil
}

// roundTo6 rounds a plain positive decimal with more than 6 decimals half up
// to 6 (trailing zeros trimmed), for the error that suggests it; ok is false
// for anything else.
func roundTo6(s string) (string, bool) {
	whole, frac, found := strings.Cut(s, ".")
	if !found || len(frac) <= 6 || whole == "" || strings.Trim(whole+frac, "0123456789") != "" {
		return "", false
	}
	m, err := money.ParseUSD(whole + "." + frac[:6])
	if err != nil {
		return "", false
	}
	if frac[6] >= '5' {
		m++
	}
	b, _ := m.MarshalJSON()
	return string(b), true
}
