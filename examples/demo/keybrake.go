package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// api is a small client for Keybrake's key API (/vault/*). It uses nothing
// but net/http and the JSON shapes documented in DESIGN.md, as an outside
// workflow would.
type api struct {
	base  string // e.g. http://127.0.0.1:8080
	token string
	http  *http.Client
}

// apiStatusError is a key API answer with an unexpected status.
type apiStatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiStatusError) Error() string {
	return fmt.Sprintf("%s %s answered %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// do sends one request to the key API and decodes a JSON answer into out
// when the status is the one wanted.
func (a *api) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if res.StatusCode != want {
		return &apiStatusError{Method: method, Path: path, Status: res.StatusCode, Body: string(raw)}
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding %s: %w", method, path, strings.TrimSpace(string(raw)), err)
	}
	return nil
}

// createKeyRequest is the body of POST /vault/keys.
type createKeyRequest struct {
	Vendor           string            `json:"vendor"`
	TotalUSDCap      json.Number       `json:"total_usd_cap"`
	AllowedEndpoints []string          `json:"allowed_endpoints"`
	ExpiresIn        string            `json:"expires_in"`
	AgentRunLabel    string            `json:"agent_run_label"`
	Metadata         map[string]string `json:"metadata,omitempty"`
}

// key is a vault key as the API shows it. Money arrives as JSON numbers of
// dollars and is kept as text (json.Number), then parsed exactly.
type key struct {
	KeyID         string      `json:"key_id"`
	VaultKey      string      `json:"vault_key"`
	Vendor        string      `json:"vendor"`
	AgentRunLabel string      `json:"agent_run_label"`
	TotalUSDCap   json.Number `json:"total_usd_cap"`
	ExpiresAt     string      `json:"expires_at"`
	RevokedAt     *string     `json:"revoked_at"`
	Status        string      `json:"status"`
	SpentUSD      json.Number `json:"spent_usd"`
	ReservedUSD   json.Number `json:"reserved_usd"`
	RemainingUSD  json.Number `json:"remaining_usd"`
	Calls         int64       `json:"calls"`
	CapHits       int64       `json:"cap_hits"`
}

// counts are the counters of a run summary, at every level.
type counts struct {
	Calls       int64       `json:"calls"`
	Forwarded   int64       `json:"forwarded"`
	CapHits     int64       `json:"cap_hits"`
	Refused     int64       `json:"refused"`
	SpentUSD    json.Number `json:"spent_usd"`
	ReservedUSD json.Number `json:"reserved_usd"`
}

// summary is the answer to GET /vault/summary.
type summary struct {
	AgentRunLabel string `json:"agent_run_label"`
	counts
	ByEndpoint []struct {
		Vendor   string `json:"vendor"`
		Endpoint string `json:"endpoint"`
		counts
	} `json:"by_endpoint"`
}

// call is one audit record.
type call struct {
	CallID      string      `json:"call_id"`
	KeyID       string      `json:"key_id"`
	Method      string      `json:"method"`
	Path        string      `json:"path"`
	StatusCode  int         `json:"status_code"`
	Outcome     string      `json:"outcome"`
	CostUSD     json.Number `json:"cost_usd"`
	VendorTxnID string      `json:"vendor_txn_id"`
	CostState   string      `json:"cost_state"`
	// Count is how many calls the record stands for: refusals are counted
	// per key, outcome and minute, in one record.
	Count int `json:"count"`
}

type auditPage struct {
	Data       []call  `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func (a *api) createKey(ctx context.Context, req createKeyRequest) (key, error) {
	var k key
	err := a.do(ctx, http.MethodPost, "/vault/keys", req, http.StatusCreated, &k)
	return k, err
}

func (a *api) getKey(ctx context.Context, id string) (key, error) {
	var k key
	err := a.do(ctx, http.MethodGet, "/vault/keys/"+url.PathEscape(id), nil, http.StatusOK, &k)
	return k, err
}

func (a *api) revokeKey(ctx context.Context, id string) (key, error) {
	var k key
	err := a.do(ctx, http.MethodDelete, "/vault/keys/"+url.PathEscape(id), nil, http.StatusOK, &k)
	return k, err
}

func (a *api) summary(ctx context.Context, label string) (summary, error) {
	var s summary
	err := a.do(ctx, http.MethodGet, "/vault/summary?agent_run_label="+url.QueryEscape(label), nil, http.StatusOK, &s)
	return s, err
}

// audit reads every call of a run, page by page (bounded).
func (a *api) audit(ctx context.Context, label string) ([]call, error) {
	var all []call
	q := url.Values{"agent_run_label": {label}, "limit": {"200"}}
	for page := 0; page < 50; page++ {
		var p auditPage
		if err := a.do(ctx, http.MethodGet, "/vault/audit?"+q.Encode(), nil, http.StatusOK, &p); err != nil {
			return all, err
		}
		all = append(all, p.Data...)
		if p.NextCursor == nil || *p.NextCursor == "" {
			return all, nil
		}
		q.Set("cursor", *p.NextCursor)
	}
	return all, fmt.Errorf("GET /vault/audit: still paginating after 50 pages (%d calls)", len(all))
}
