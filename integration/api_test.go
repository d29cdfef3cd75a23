package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// apiCall calls the key API and decodes the JSON answer into out (if not nil).
func apiCall(t *testing.T, n *node, method, path string, body any, out any) int {
	t.Helper()
	return apiCallAs(t, n, apiToken, method, path, body, out)
}

// apiCallAs is apiCall with another API token.
func apiCallAs(t *testing.T, n *node, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// issuedKey is the answer to POST /vault/keys.
type issuedKey struct {
	KeyID    string `json:"key_id"`
	VaultKey string `json:"vault_key"`
	Vendor   string `json:"vendor"`
}

// issueKey issues a vault key, failing the test on anything but 201.
func issueKey(t *testing.T, n *node, req map[string]any) issuedKey {
	t.Helper()
	var k issuedKey
	if code := apiCall(t, n, "POST", "/vault/keys", req, &k); code != http.StatusCreated {
		t.Fatalf("issuing key: status %d", code)
	}
	if k.KeyID == "" || k.VaultKey == "" {
		t.Fatalf("issued key is missing its id or secret: %+v", k)
	}
	return k
}

// keyView is GET /vault/keys/{id}; money as json.Number to compare exactly.
type keyView struct {
	KeyID     string      `json:"key_id"`
	Status    string      `json:"status"`
	Spent     json.Number `json:"spent_usd"`
	Reserved  json.Number `json:"reserved_usd"`
	Remaining json.Number `json:"remaining_usd"`
	Calls     int64       `json:"calls"`
	CapHits   int64       `json:"cap_hits"`
}

func getKey(t *testing.T, n *node, id string) keyView {
	t.Helper()
	var v keyView
	if code := apiCall(t, n, "GET", "/vault/keys/"+id, nil, &v); code != http.StatusOK {
		t.Fatalf("GET key %s: status %d", id, code)
	}
	return v
}

// summary is GET /vault/summary.
type summary struct {
	RunLabel   string          `json:"agent_run_label"`
	Calls      int64           `json:"calls"`
	Forwarded  int64           `json:"forwarded"`
	CapHits    int64           `json:"cap_hits"`
	Refused    int64           `json:"refused"`
	Spent      json.Number     `json:"spent_usd"`
	Reserved   json.Number     `json:"reserved_usd"`
	ByEndpoint []summaryBucket `json:"by_endpoint"`
}

type summaryBucket struct {
	Vendor    string      `json:"vendor"`
	Endpoint  string      `json:"endpoint"`
	Calls     int64       `json:"calls"`
	Forwarded int64       `json:"forwarded"`
	CapHits   int64       `json:"cap_hits"`
	Spent     json.Number `json:"spent_usd"`
}

func getSummary(t *testing.T, n *node, runLabel string) summary {
	t.Helper()
	var s summary
	if code := apiCall(t, n, "GET", "/vault/summary?agent_run_label="+runLabel, nil, &s); code != http.StatusOK {
		t.Fatalf("GET summary: status %d", code)
	}
	return s
}

// auditCall is one row of GET /vault/audit.
type auditCall struct {
	CallID      string      `json:"call_id"`
	KeyID       string      `json:"key_id"`
	RunLabel    string      `json:"agent_run_label"`
	Vendor      string      `json:"vendor"`
	Method      string      `json:"method"`
	Path        string      `json:"path"`
	Endpoint    string      `json:"endpoint"`
	StatusCode  int         `json:"status_code"`
	Outcome     string      `json:"outcome"`
	Reserved    json.Number `json:"reserved_usd"`
	Cost        json.Number `json:"cost_usd"`
	VendorTxnID string      `json:"vendor_txn_id"`
	CostState   string      `json:"cost_state"`
	IdemKey     string      `json:"idempotency_key"`
	StartedAt   string      `json:"started_at"`
	ResolvedBy  string      `json:"resolved_by"`
	ResolvedAt  *string     `json:"resolved_at"`
	Tag         string      `json:"tag"`
	// Count is how many calls the row stands for: refusals are counted
	// per key, outcome and minute.
	Count int `json:"count"`
}

// audit reads every page of the audit log for a run.
func audit(t *testing.T, n *node, runLabel string) []auditCall {
	t.Helper()
	var all []auditCall
	cursor := ""
	for page := 0; page < 100; page++ {
		var resp struct {
			Data       []auditCall `json:"data"`
			NextCursor *string     `json:"next_cursor"`
		}
		path := "/vault/audit?limit=100&agent_run_label=" + runLabel
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if code := apiCall(t, n, "GET", path, nil, &resp); code != http.StatusOK {
			t.Fatalf("GET audit: status %d", code)
		}
		all = append(all, resp.Data...)
		if resp.NextCursor == nil || *resp.NextCursor == "" {
			return all
		}
		cursor = *resp.NextCursor
	}
	t.Fatal("audit paging did not end")
	return nil
}
