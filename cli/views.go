package cli

import "encoding/json"

// The API's answers, as far as the tables show them. Money stays a
// json.Number: exact, never a float.

type keyView struct {
	KeyID            string       `json:"key_id"`
	VaultKey         string       `json:"vault_key"`
	Vendor           string       `json:"vendor"`
	AgentRunLabel    string       `json:"agent_run_label"`
	AllowedEndpoints []string     `json:"allowed_endpoints"`
	DailyUSDCap      *json.Number `json:"daily_usd_cap"`
	TotalUSDCap      *json.Number `json:"total_usd_cap"`
	ExpiresAt        string       `json:"expires_at"`
	Status           string       `json:"status"`
	SpentUSD         json.Number  `json:"spent_usd"`
	ReservedUSD      json.Number  `json:"reserved_usd"`
	RemainingUSD     json.Number  `json:"remaining_usd"`
	Calls            int64        `json:"calls"`
	CapHits          int64        `json:"cap_hits"`
}

type keyList struct {
	Data       []keyView `json:"data"`
	NextCursor *string   `json:"next_cursor"`
}

type callView struct {
	CallID        string      `json:"call_id"`
	KeyID         string      `json:"key_id"`
	AgentRunLabel string      `json:"agent_run_label"`
	Vendor        string      `json:"vendor"`
	Method        string      `json:"method"`
	Path          string      `json:"path"`
	StatusCode    int         `json:"status_code"`
	Outcome       string      `json:"outcome"`
	CostUSD       json.Number `json:"cost_usd"`
	VendorTxnID   string      `json:"vendor_txn_id"`
	StartedAt     string      `json:"started_at"`
	CostState     string      `json:"cost_state"`
}

type callList struct {
	Data       []callView `json:"data"`
	NextCursor *string    `json:"next_cursor"`
}

type summaryCounts struct {
	Calls       int64            `json:"calls"`
	Forwarded   int64            `json:"forwarded"`
	Replays     int64            `json:"replays"`
	CapHits     int64            `json:"cap_hits"`
	Refused     int64            `json:"refused"`
	Refusals    map[string]int64 `json:"refusals"`
	SpentUSD    json.Number      `json:"spent_usd"`
	ReservedUSD json.Number      `json:"reserved_usd"`
}

type summaryView struct {
	AgentRunLabel *string `json:"agent_run_label"`
	Day           *string `json:"day"`
	summaryCounts
	Keys  []keyView `json:"keys"`
	ByRun []struct {
		AgentRunLabel string `json:"agent_run_label"`
		summaryCounts
	} `json:"by_run"`
	ByEndpoint []struct {
		Vendor   string `json:"vendor"`
		Endpoint string `json:"endpoint"`
		summaryCounts
	} `json:"by_endpoint"`
}

// tokenView is a stored API token (never its secret after creation).
type tokenView struct {
	TokenID   string          `json:"token_id"`
	Token     string          `json:"token"`
	Name      string          `json:"name"`
	Role      string          `json:"role"`
	Policy    json.RawMessage `json:"policy"`
	CreatedAt string          `json:"created_at"`
	RevokedAt *string         `json:"revoked_at"`
}

type tokenList struct {
	Data       []tokenView `json:"data"`
	NextCursor *string     `json:"next_cursor"`
}
