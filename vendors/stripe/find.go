package stripe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors"
)

// A call whose answer was lost is found again by listing the objects of
// its create made around its start, and matching the tag Keybrake wrote in
// their metadata. A list is what Stripe documents as consistent; Search
// ("don't use search for read-after-write flows", its index lagging writes
// by a minute or, in incidents, more) is not, so its "not found" would not
// show that nothing was done.
const (
	// FindBefore and FindAfter bound the created time of the objects
	// listed, around the call's start: clocks differ by a little, and
	// Stripe may finish a request a while after it arrived. A call's
	// object made after FindAfter would be missed, so the reconciler's
	// NotFoundAfter must stay below FindAfter less FindBefore.
	FindBefore = time.Minute
	FindAfter  = 10 * time.Minute
	// findPageSize is Stripe's largest page; findMaxPages bounds the
	// questions one call costs: more objects than that in its window and
	// it is left to an operator.
	findPageSize = 100
	findMaxPages = 50
)

// pricedFinds are the creates whose object the reconciler prices itself
// (as the gate prices Stripe's answer); the object of another tagged
// create, once found, is left to an operator.
var pricedFinds = map[string]bool{"/v1/payment_intents": true, "/v1/charges": true}

// listFilters are what a list needs beyond created to show every object:
// Stripe lists subscriptions other than canceled ones by default.
var listFilters = map[string]url.Values{"/v1/subscriptions": {"status": {"all"}}}

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

// listed is what Find reads of an object in a list.
type listed struct {
	ID       string            `json:"id"`
	Metadata map[string]string `json:"metadata"`
}

// Find implements reconcile.Finder: it lists the objects of the call's
// create made in its window, as the account the call acted on, and keeps
// those whose metadata keybrake_call_id is the call's tag. One found is
// priced the way the gate prices Stripe's answer; none is reconcile.Absent,
// evidence from a consistent read; a call that wrote no tag is never
// Absent, whatever Stripe lists: it is left to an operator.
func (v *Vendor) Find(ctx context.Context, c ledger.Call) (reconcile.Finding, error) {
	path, rawScope, _ := strings.Cut(c.Path, "?")
	if c.Method != http.MethodPost || !taggedCreates[path] {
		return reconcile.Finding{Why: "Keybrake cannot find what " + c.Method + " " + path + " did at Stripe"}, nil
	}
	if c.Tag == "" {
		return reconcile.Finding{Why: "the call wrote no keybrake_call_id on what it may have created"}, nil
	}
	scope, err := url.ParseQuery(rawScope)
	if err != nil {
		return reconcile.Finding{}, fmt.Errorf("reading the recorded scope: %w", err)
	}
	from, until := c.StartedAt.Add(-FindBefore), c.StartedAt.Add(FindAfter)
	var found []json.RawMessage
	after := ""
	for page := 0; ; page++ {
		if page == findMaxPages {
			return reconcile.Finding{Why: fmt.Sprintf("Stripe lists more than %d objects of %s in the call's window", findPageSize*findMaxPages, path)}, nil
		}
		q := url.Values{"limit": {strconv.Itoa(findPageSize)},
			"created[gte]": {strconv.FormatInt(from.Unix(), 10)}, "created[lte]": {strconv.FormatInt(until.Unix(), 10)}}
		for k, vs := range listFilters[path] {
			q[k] = vs
		}
		if after != "" {
			q.Set("starting_after", after)
		}
		data, more, err := v.list(ctx, path, q, scope)
		if err != nil {
			return reconcile.Finding{}, err
		}
		for _, raw := range data {
			var o listed
			if json.Unmarshal(raw, &o) == nil && o.Metadata[MetadataCallID] == c.Tag {
				found = append(found, raw)
			}
			after = o.ID
		}
		if !more || len(data) == 0 || after == "" {
			break
		}
	}
	window := from.UTC().Format(time.RFC3339) + " and " + until.UTC().Format(time.RFC3339)
	switch len(found) {
	case 0:
		return reconcile.Finding{Verdict: reconcile.Absent,
			Why: "Stripe lists no object of " + path + " created between " + window + " with keybrake_call_id " + c.Tag}, nil
	case 1:
	default:
		// One tag, several objects: not what one call makes. Leave it.
		return reconcile.Finding{Why: fmt.Sprintf("Stripe lists %d objects tagged %s", len(found), c.Tag)}, nil
	}
	var obj object
	_ = json.Unmarshal(found[0], &obj)
	if !pricedFinds[path] {
		return reconcile.Finding{Why: "Stripe has " + obj.ID + " tagged with this call; Keybrake does not price " + path + " objects itself"}, nil
	}
	if obj.Object == "charge" && obj.Status == "failed" {
		// A declined charge exists but moved nothing (the gate released
		// its 402).
		return reconcile.Finding{Verdict: reconcile.Moved, TxnID: obj.ID,
			Why: "Stripe has " + obj.ID + " tagged with this call, failed"}, nil
	}
	r := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: path}, Header: http.Header{}}
	res := v.Settle(r, http.StatusOK, nil, found[0], vendors.Estimate{Cost: c.Reserved, Known: true})
	if res.TxnID == "" || res.Amount == nil {
		return reconcile.Finding{Why: "Stripe's object tagged " + c.Tag + " has no id or amount"}, nil
	}
	return reconcile.Finding{Verdict: reconcile.Moved, Cost: res.Cost, TxnID: res.TxnID,
		Why: "Stripe has " + res.TxnID + " tagged with this call"}, nil
}

// list reads one page of a Stripe list with the real secret, as the
// account scope names.
func (v *Vendor) list(ctx context.Context, path string, q, scope url.Values) ([]json.RawMessage, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.upstream+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, false, fmt.Errorf("listing Stripe %s: %w", path, vendors.Unreachable(err))
	}
	req.Header.Set("Authorization", "Bearer "+v.secretKey)
	for _, h := range scopeHeaders {
		if val := scope.Get(strings.ReplaceAll(strings.ToLower(h), "-", "_")); val != "" {
			req.Header.Set(h, val)
		}
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("listing Stripe %s: %w", path, vendors.Unreachable(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, false, fmt.Errorf("reading Stripe's list of %s: %w", path, vendors.Unreachable(err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("Stripe answered %d to a list of %s", resp.StatusCode, path)
	}
	var page struct {
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, false, fmt.Errorf("reading Stripe's list of %s: %w", path, err)
	}
	return page.Data, page.HasMore, nil
}

var (
	_ reconcile.Finder      = (*Vendor)(nil)
	_ vendors.ScopeRecorder = (*Vendor)(nil)
)
