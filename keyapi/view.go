package keyapi

import (
	"encoding/json"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
)

// keyView is a key as the API shows it. VaultKey is set only in the answer
// to POST /vault/keys: the secret is shown once and never stored.
type keyView struct {
	KeyID            string          `json:"key_id"`
	VaultKey         string          `json:"vault_key,omitempty"`
	Vendor           string          `json:"vendor"`
	AgentRunLabel    string          `json:"agent_run_label"`
	AllowedEndpoints []string        `json:"allowed_endpoints"`
	DailyUSDCap      *money.Micros   `json:"daily_usd_cap"`
	TotalUSDCap      *money.Micros   `json:"total_usd_cap"`
	Metadata         json.RawMessage `json:"metadata"`
	CreatedAt        string          `json:"created_at"`
	ExpiresAt        string          `json:"expires_at"`
	RevokedAt        *string         `json:"revoked_at"`
	Status           string          `json:"status"`
	SpentUSD         money.Micros    `json:"spent_usd"`
	ReservedUSD      money.Micros    `json:"reserved_usd"`
	RemainingUSD     money.Micros    `json:"remaining_usd"`
	DailySpentUSD    money.Micros    `json:"daily_spent_usd"`
	Calls            int64           `json:"calls"`
	CapHits          int64           `json:"cap_hits"`
	// Rules are the key's rules beyond dollars, null when it has none;
	// RuleCalls the money-moving calls counted against max_calls.
	Rules     *rules.Rules `json:"rules"`
	RuleCalls int64        `json:"rule_calls"`
	// Approval is the key's approval rule; null for none.
	Approval *approvalRuleView `json:"approval"`
}

// newKeyView renders a key with its usage at now.
func newKeyView(u ledger.KeyUsage, now time.Time) keyView {
	endpoints := u.AllowedEndpoints
	if endpoints == nil {
		endpoints = []string{}
	}
	meta := u.Metadata
	if len(meta) == 0 {
		meta = nil
	}
	return keyView{
		KeyID:            u.ID,
		Vendor:           u.Vendor,
		AgentRunLabel:    u.RunLabel,
		AllowedEndpoints: endpoints,
		DailyUSDCap:      u.DailyCap,
		TotalUSDCap:      u.TotalCap,
		Metadata:         meta,
		CreatedAt:        formatTime(u.CreatedAt),
		ExpiresAt:        formatTime(u.ExpiresAt),
		RevokedAt:        formatTimePtr(u.RevokedAt),
		Status:           u.Status(now),
		SpentUSD:         u.Spent,
		ReservedUSD:      u.Reserved,
		RemainingUSD:     remaining(u),
		DailySpentUSD:    u.DaySpent,
		Calls:            u.Calls,
		CapHits:          u.CapHits,
		Rules:            u.Rules,
		RuleCalls:        u.RuleCalls,
		Approval:         newApprovalRuleView(u.Approval),
	}
}

// remaining is what the tighter of the key's caps still allows:
// total cap − spent − reserved and daily cap − day spent − day reserved,
// whichever is smaller, floored at 0. It does not look at status: a revoked
// or expired key shows what was left when it stopped.
func remaining(u ledger.KeyUsage) money.Micros {
	var best money.Micros
	set := false
	if u.TotalCap != nil {
		best, set = *u.TotalCap-u.Spent-u.Reserved, true
	}
	if u.DailyCap != nil {
		if r := *u.DailyCap - u.DaySpent - u.DayReserved; !set || r < best {
			best = r
		}
	}
	return max(best, 0)
}
