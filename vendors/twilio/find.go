package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors"
)

// Twilio messages carry no metadata: a message whose answer was lost is
// found again by listing the account's messages to its To around the
// call's time. Listing is not searching: Twilio lists a message as soon as
// it is created.
const (
	// findBefore and findAfter bound the window of date_created, around the
	// call's start, in which a message may be the call's: clocks differ by
	// a little, and Twilio may take a while to act on a request.
	findBefore = time.Minute
	findAfter  = 5 * time.Minute
	// findPageSize is how many of the newest messages to the To are read.
	findPageSize = 100
)

// RecordedScope implements vendors.ScopeRecorder: a message's To, the one
// thing a listing can find it by.
func (v *Vendor) RecordedScope(r *http.Request, body []byte) string {
	if kind, _ := classify(r.Method, r.URL.Path); kind != kindMessage {
		return ""
	}
	// Read as it is priced, and trimmed as it is forwarded (trimTo).
	form, bad := readForm(r, body, messageMulti)
	if bad != nil {
		return ""
	}
	to := strings.TrimSpace(form.Get("to"))
	if to == "" {
		return ""
	}
	return url.Values{"to": {to}}.Encode()
}

// Find implements reconcile.Finder for messages: the messages to the
// call's To created around its start are its candidates (the reconciler
// drops those another call counts), priced at Twilio's price, or at the
// call's reservation while Twilio has not priced them. No message in the
// window is reconcile.Absent. A page full of newer messages, or a call
// that is not a message, is undecided.
func (rc *Reconciler) Find(ctx context.Context, c ledger.Call) (reconcile.Finding, error) {
	path, rawScope, _ := strings.Cut(c.Path, "?")
	if kind, _ := classify(c.Method, path); kind != kindMessage {
		return reconcile.Finding{Why: "Twilio cannot be asked about " + c.Method + " " + path}, nil
	}
	scope, err := url.ParseQuery(rawScope)
	if err != nil || scope.Get("to") == "" {
		return reconcile.Finding{Why: "the call's To was not recorded"}, nil
	}
	to := scope.Get("to")
	q := url.Values{"To": {to}, "PageSize": {fmt.Sprint(findPageSize)}}
	status, body, err := rc.get(ctx, "Messages.json?"+q.Encode(), 8<<20)
	if err != nil {
		return reconcile.Finding{}, fmt.Errorf("listing Twilio messages: %w", err)
	}
	if status != http.StatusOK {
		return reconcile.Finding{}, fmt.Errorf("listing Twilio messages: Twilio answered %d", status)
	}
	var page struct {
		Messages []struct {
			resource
			DateCreated string `json:"date_created"`
		} `json:"messages"`
		NextPageURI *string `json:"next_page_uri"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return reconcile.Finding{}, fmt.Errorf("reading Twilio's list: %w", err)
	}
	from, until := c.StartedAt.Add(-findBefore), c.StartedAt.Add(findAfter)
	var cands []reconcile.Candidate
	complete := page.NextPageURI == nil
	for _, m := range page.Messages {
		created, err := time.Parse(time.RFC1123Z, m.DateCreated)
		if err != nil {
			return reconcile.Finding{Why: "Twilio listed a message with an unreadable date_created"}, nil
		}
		if created.Before(from) {
			complete = true // older than the window: the rest are too
			continue
		}
		if created.After(until) || txnID(m.Sid) == "" {
			continue
		}
		cost, ok := m.price()
		if !ok {
			cost = c.Reserved // not priced yet: the estimate stands
		}
		cands = append(cands, reconcile.Candidate{TxnID: m.Sid, Cost: cost})
	}
	why := "Twilio's messages to the call's To around its time"
	switch {
	case !complete:
		return reconcile.Finding{Why: why + ": more than a page of them"}, nil
	case len(cands) == 0:
		return reconcile.Finding{Verdict: reconcile.Absent, Why: "Twilio has no message to the call's To around its time"}, nil
	}
	return reconcile.Finding{Verdict: reconcile.Moved, Candidates: cands, Why: why}, nil
}

var (
	_ reconcile.Finder      = (*Reconciler)(nil)
	_ vendors.ScopeRecorder = (*Vendor)(nil)
)
