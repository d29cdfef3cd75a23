// Package resend speaks Resend's email API for the Keybrake gate.
//
// What Keybrake knows of Resend:
//
//   - Credential: resend-go and the other Resend SDKs send
//     "Authorization: Bearer KEY"; the vault key rides there and the real
//     API key goes upstream the same way.
//   - Cost: Resend counts every To, Cc and Bcc recipient of a sent email as
//     a separate email against a plan's quota ("Multiple To, CC, or BCC
//     recipients in sent emails count as separate emails towards the
//     monthly quota", resend.com/docs/knowledge-base/account-quotas-and-limits).
//     So POST /emails costs (to + cc + bcc recipients) × the per-email
//     price, and POST /emails/batch the sum of that over its emails. to, cc
//     and bcc may each be a string or an array of strings, and every
//     comma-separated address in a string counts. What cannot be counted
//     with certainty (a quoted display name, a key given twice, To in
//     another letter case, a body not sent as application/json, which
//     Resend reads) is refused with 400.
//   - The per-email price defaults to $0.0009: the pay-as-you-go overage
//     price of the Transactional Pro plan ($0.90 per 1,000 emails beyond the
//     plan's 50,000 a month for $20), i.e. what one more email costs once a
//     runaway job has used the plan's quota. The plan's average price is
//     $0.0004 ($20 / 50,000); set PerEmailUSD to whichever your budget
//     means. Figures from resend.com/pricing and Resend's pay-as-you-go
//     changelog, as reported in 2025–2026.
//   - Settlement: a 2xx settles at the estimate (Resend's response has no
//     price) with the email id (or, for a batch, the ids of data[] joined
//     with ",") as the transaction id. A batch sent with
//     x-batch-validation: permissive may fail some emails: Resend lists
//     each in errors[] by its index in the request
//     (resend.com/docs/dashboard/emails/batch-validation-modes), and it
//     costs nothing. The batch is reserved email by email (the sum of each
//     email's to + cc + bcc) and settled at the sum over the emails not
//     listed, never an average: one email to 150 recipients and 99 failed
//     one-recipient emails cost 150 emails. An answer whose errors[] does
//     not add up settles at the whole reservation. A 4xx releases;
//     anything else is ambiguous and kept for reconciliation.
//   - Idempotency-Key: Resend honours it on POST /emails and /emails/batch
//     for 24 hours, so a true replay is free and
//     the same key with another payload is refused with Resend's own 409.
//   - POST /api-keys mints a full-access Resend key: refused for every
//     vault key, whatever its allowlist.
//   - Reads (GET), updates (PATCH), deletes and the free management POSTs
//     (domains, contacts, segments, templates, topics, webhooks, cancelling
//     a scheduled email) cost nothing. Any other POST — a
//     marketing broadcast sent with POST /broadcasts or
//     /broadcasts/{id}/send is billed by contacts, not by email — is of
//     unknown cost and follows the unknown_cost policy.
//   - Errors: {"statusCode":429,"name":"daily_quota_exceeded","message":"…"}
//     with Content-Type application/json, which resend-go turns into a
//     *resend.RateLimitError (it never retries).
package resend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/keybrake/keybrake/allowlist"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/vendors"
)

// Name is the vendor name of Resend.
const Name = "resend"

// DefaultPerEmailUSD is the default price of one email (one recipient):
// $0.0009, Resend's Transactional Pro overage price.
const DefaultPerEmailUSD money.Micros = 900

// Config configures the Resend vendor.
type Config struct {
	// APIKey is the real Resend API key (re_…). Required.
	APIKey string `json:"api_key"`
	// PerEmailUSD is the price of one email to one recipient. Default
	// DefaultPerEmailUSD ($0.0009).
	PerEmailUSD money.Micros `json:"per_email_usd,omitempty"`
}

// freePOSTs are Resend's management POSTs, which send nothing.
var freePOSTs = []string{
	"POST /emails/*/cancel",
	"POST /domains",
	"POST /domains/*/verify",
	"POST /audiences",
	"POST /audiences/*/contacts",
	"POST /contacts",
	"POST /contacts/*/segments/*",
	"POST /contact-properties",
	"POST /contact-properties/*",
	"POST /segments",
	"POST /templates",
	"POST /templates/*/publish",
	"POST /templates/*/duplicate",
	"POST /topics",
	"POST /webhooks",
}

// recipientFields are the fields a send is priced from, which the query
// string must not also name.
var recipientFields = []string{"to", "cc", "bcc"}

// freeMethods move no money on Resend: reads, updates and deletes.
var freeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodDelete}

// Vendor is Resend.
type Vendor struct {
	perEmail  money.Micros
	freePOSTs allowlist.List
	from      vendors.CredentialConfig
	inject    vendors.InjectConfig
}

// New returns the Resend vendor. Without an API key it is built, but
// refuses to authorize any call (see vendors.SwapCredential).
func New(cfg Config) (*Vendor, error) {
	if cfg.PerEmailUSD < 0 {
		return nil, fmt.Errorf("resend: per_email_usd must not be negative")
	}
	price := cfg.PerEmailUSD
	if price == 0 {
		price = DefaultPerEmailUSD
	}
	free, err := allowlist.Parse(freePOSTs)
	if err != nil {
		return nil, fmt.Errorf("resend: %w", err)
	}
	v := &Vendor{
		perEmail:  price,
		freePOSTs: free,
		from:      vendors.CredentialConfig{From: vendors.FromBearer},
		inject:    vendors.InjectConfig{As: vendors.InjectBearer, Secret: cfg.APIKey},
	}
	if err := v.inject.Validate(); err != nil {
		return nil, fmt.Errorf("resend: %w", err)
	}
	return v, nil
}

// Name implements vendors.Vendor.
func (v *Vendor) Name() string { return Name }

// Credential implements vendors.Vendor: resend-go and the other SDKs send
// "Authorization: Bearer KEY".
func (v *Vendor) Credential(r *http.Request) (string, bool) { return v.from.Extract(r) }

// Authorize implements vendors.Vendor: the real API key replaces the vault
// key, the same way.
func (v *Vendor) Authorize(r *http.Request) error { return vendors.SwapCredential(r, v.from, v.inject) }

// WriteError implements vendors.Vendor with Resend's error body.
func (v *Vendor) WriteError(w http.ResponseWriter, e *vendors.Error) { vendors.WriteResendError(w, e) }

// Idempotency implements vendors.IdempotencyHonouring. Resend keeps an
// Idempotency-Key for 24 hours on POST /emails and /emails/batch
// (resend.com/docs/dashboard/emails/idempotency-keys): the same payload
// answers the first response and sends nothing; another payload is refused
// with 409 invalid_idempotent_request; one still running with 409
// concurrent_idempotent_requests.
func (v *Vendor) Idempotency() vendors.Idempotency {
	mismatch, inFlight := vendors.IdempotencyErrors(vendors.FormatResend)
	return vendors.Idempotency{
		Header:   "Idempotency-Key",
		Methods:  []string{http.MethodPost},
		Paths:    []string{"/emails", "/emails/batch"},
		Window:   24 * time.Hour,
		Mismatch: mismatch,
		InFlight: inFlight,
	}
}

// Estimate implements vendors.Vendor: sends are priced per recipient
// (countSend, countBatch); POST /api-keys is refused; everything else as
// declared.
func (v *Vendor) Estimate(r *http.Request, body []byte) (vendors.Estimate, error) {
	if r.Method != http.MethodPost {
		if slices.Contains(freeMethods, r.Method) {
			return vendors.Estimate{Known: true}, nil
		}
		return unknownCost(r), nil
	}
	batch := false
	switch strings.ToLower(path.Clean("/" + r.URL.Path)) {
	case "/api-keys":
		return vendors.Estimate{}, vendors.MintsCredential("Resend API keys (POST /api-keys)")
	case "/emails":
	case "/emails/batch":
		batch = true
	default:
		if _, free := v.freePOSTs.Match(r.Method, r.URL.Path); free {
			return vendors.Estimate{Known: true}, nil
		}
		return unknownCost(r), nil
	}
	if vendors.MediaType(r) != "application/json" {
		return vendors.Estimate{}, badRequest("Resend reads the email as JSON: send it with Content-Type: application/json.")
	}
	if bad := vendors.CheckQuery(r, recipientFields); bad != nil {
		return vendors.Estimate{}, bad
	}
	var counts []int64
	var err error
	if batch {
		counts, err = countBatch(body)
	} else {
		var n int64
		n, err = countSend(body)
		counts = []int64{n}
	}
	if err != nil {
		return vendors.Estimate{}, badRequest("Keybrake cannot count this email's recipients: " + err.Error() + ".")
	}
	est := vendors.Estimate{Known: true}
	var total int64
	for _, n := range counts {
		cost, err := money.MulDivCeil(n, int64(v.perEmail), 1)
		total += n
		if err != nil || cost > int64(money.MaxUSD*money.PerDollar) || est.Cost+money.Micros(cost) > money.MaxUSD*money.PerDollar {
			return vendors.Estimate{Reason: "too many recipients to price"}, nil
		}
		est.Cost += money.Micros(cost)
		if batch {
			est.Items = append(est.Items, money.Micros(cost))
		}
	}
	if total == 0 {
		return vendors.Estimate{Reason: "no recipients found in to, cc or bcc"}, nil
	}
	return est, nil
}

// unknownCost is the estimate of a call Keybrake cannot price: a marketing
// broadcast (billed by contacts, not by email), or an endpoint it does not
// know. The unknown_cost policy applies.
func unknownCost(r *http.Request) vendors.Estimate {
	p := r.URL.Path
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	return vendors.Estimate{Reason: "no cost rule for " + r.Method + " " + p}
}

func badRequest(msg string) *vendors.Error {
	return &vendors.Error{Status: http.StatusBadRequest, Code: "keybrake_bad_request", Message: msg}
}

// Settle implements vendors.Vendor. A 2xx settles at the estimate, with
// the email id (for a batch, the ids of data[] joined with ",") as the
// transaction id, except that a batch whose emails partly failed costs only
// the emails sent, each at its own recipients (sentItems); a send whose estimate was not known keeps it as
// a provisional cost. A 4xx releases; anything else is ambiguous.
func (v *Vendor) Settle(r *http.Request, status int, _ http.Header, body []byte, est vendors.Estimate) vendors.Result {
	dec := vendors.StatusDecision(status)
	if dec != vendors.DecisionSettle {
		return vendors.Result{Decision: dec}
	}
	res := vendors.Result{Decision: vendors.DecisionSettle, Cost: est.Cost}
	if r.Method != http.MethodPost {
		return res
	}
	var out struct {
		ID   json.RawMessage `json:"id"`
		Data []struct {
			ID json.RawMessage `json:"id"`
		} `json:"data"`
		Errors []batchError `json:"errors"`
	}
	batch := false
	switch strings.ToLower(path.Clean("/" + r.URL.Path)) {
	case "/emails":
	case "/emails/batch":
		batch = true
	default:
		return res
	}
	if !est.Known {
		res.Decision = vendors.DecisionUnpriced
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return res
	}
	if !batch {
		res.TxnID = idString(out.ID)
		return res
	}
	var ids []string
	for _, d := range out.Data {
		if id := idString(d.ID); id != "" {
			ids = append(ids, id)
		}
	}
	res.TxnID = strings.Join(ids, ",")
	if res.Decision != vendors.DecisionSettle || len(out.Errors) == 0 {
		return res
	}
	res.Cost = sentItems(est, len(out.Data), out.Errors)
	return res
}

// batchError is one entry of a permissive batch's errors[]: the index of
// an email of the request that Resend did not create.
type batchError struct {
	Index *int `json:"index"`
}

// sentItems is the cost of a permissive batch's emails that Resend
// created: every email not named by errors[].index, each at its own
// recipient count. An answer that does not add up (an index out of range
// or given twice, data[] not holding every other email) settles at the
// whole estimate: Keybrake does not guess which emails went out.
func sentItems(est vendors.Estimate, created int, errs []batchError) money.Micros {
	if len(est.Items) == 0 {
		return est.Cost
	}
	failed := make(map[int]bool, len(errs))
	for _, e := range errs {
		if e.Index == nil || *e.Index < 0 || *e.Index >= len(est.Items) || failed[*e.Index] {
			return est.Cost
		}
		failed[*e.Index] = true
	}
	if created != len(est.Items)-len(failed) {
		return est.Cost
	}
	var cost money.Micros
	for i, c := range est.Items {
		if !failed[i] {
			cost += c
		}
	}
	return min(cost, est.Cost)
}

// idString is an id from Resend's answer: a string, or a number written as
// one.
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// Interface guards.
var (
	_ vendors.Vendor               = (*Vendor)(nil)
	_ vendors.IdempotencyHonouring = (*Vendor)(nil)
)
