package stripe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors"
)

// searchable are the creates whose objects Stripe's Search API finds by
// metadata, with the collection searched. Refunds, transfers, payouts and
// the rest have no search: their calls are left to an operator.
var searchable = map[string]string{
	"/v1/payment_intents": "payment_intents",
	"/v1/charges":         "charges",
}

// RecordedScope implements vendors.ScopeRecorder: the Connect account (or
// context) a call acts on.
func (v *Vendor) RecordedScope(r *http.Request, _ []byte) string {
	q := url.Values{}
	for _, h := range scopeHeaders {
		if val := r.Header.Get(h); val != "" {
			q.Set(strings.ReplaceAll(strings.ToLower(h), "-", "_"), val)
		}
	}
	return q.Encode()
}

// Find implements reconcile.Finder: it searches the collection of the
// call's create for metadata['keybrake_call_id'] (the call's tag), as the
// account the call acted on, and prices what it finds the way the gate
// prices Stripe's answer. Nothing found is reconcile.Absent; the
// reconciler waits out Stripe's search lag before believing it.
func (v *Vendor) Find(ctx context.Context, c ledger.Call) (reconcile.Finding, error) {
	path, rawScope, _ := strings.Cut(c.Path, "?")
	collection, ok := searchable[path]
	if c.Method != http.MethodPost || !ok {
		return reconcile.Finding{Why: "Stripe has no search for " + c.Method + " " + path}, nil
	}
	scope, err := url.ParseQuery(rawScope)
	if err != nil {
		return reconcile.Finding{}, fmt.Errorf("reading the recorded scope: %w", err)
	}
	tag := vendors.TagID(c.CallID, c.KeyID, c.IdempotencyKey)
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	q := url.Values{"query": {"metadata['" + MetadataCallID + "']:'" + tag + "'"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.upstream+"/v1/"+collection+"/search?"+q.Encode(), nil)
	if err != nil {
		return reconcile.Finding{}, err
	}
	req.Header.Set("Authorization", "Bearer "+v.secretKey)
	for _, h := range scopeHeaders {
		if val := scope.Get(strings.ReplaceAll(strings.ToLower(h), "-", "_")); val != "" {
			req.Header.Set(h, val)
		}
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return reconcile.Finding{}, fmt.Errorf("searching Stripe %s: %w", collection, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return reconcile.Finding{}, fmt.Errorf("reading Stripe's search answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return reconcile.Finding{}, fmt.Errorf("Stripe answered %d to a search of %s", resp.StatusCode, collection)
	}
	var found struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &found); err != nil {
		return reconcile.Finding{}, fmt.Errorf("reading Stripe's search answer: %w", err)
	}
	switch len(found.Data) {
	case 0:
		return reconcile.Finding{Verdict: reconcile.Absent,
			Why: "Stripe has no " + collection + " object with keybrake_call_id " + tag}, nil
	case 1:
	default:
		// One tag, several objects: not one this code wrote. Leave it.
		return reconcile.Finding{Why: fmt.Sprintf("Stripe has %d objects tagged %s", len(found.Data), tag)}, nil
	}
	var obj object
	if err := json.Unmarshal(found.Data[0], &obj); err == nil && obj.Object == "charge" && obj.Status == "failed" {
		// A declined charge exists but moved nothing (the gate released
		// its 402).
		return reconcile.Finding{Verdict: reconcile.Moved, TxnID: obj.ID,
			Why: "Stripe has " + obj.ID + " tagged with this call, failed"}, nil
	}
	// Priced as the gate prices Stripe's answer to the create.
	r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: path}, Header: http.Header{}}
	res := v.Settle(r, http.StatusOK, nil, found.Data[0], vendors.Estimate{Cost: c.Reserved, Known: true})
	if res.TxnID == "" || res.Amount == nil {
		return reconcile.Finding{Why: "Stripe's object tagged " + tag + " has no id or amount"}, nil
	}
	return reconcile.Finding{Verdict: reconcile.Moved, Cost: res.Cost, TxnID: res.TxnID,
		Why: "Stripe has " + res.TxnID + " tagged with this call"}, nil
}

var (
	_ reconcile.Finder      = (*Vendor)(nil)
	_ vendors.ScopeRecorder = (*Vendor)(nil)
)
