package keyapi

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
)

// BucketRefusedBeforeMatching names the endpoint bucket of calls refused
// before any allowlist entry matched (an unknown key, an endpoint outside
// the allowlist...): the ledger records them with an empty endpoint, which
// a person reading a summary cannot tell from a bug.
const BucketRefusedBeforeMatching = "(refused before matching)"

// maxRunKeys bounds the keys listed in a run's summary.
const maxRunKeys = 1000

// summaryCounts are the counters shared by every level of a summary.
// Forwarded excludes idempotent replays, which are counted in Replays: a
// replay reached the vendor but was answered from its idempotency cache and
// moved no money. Refused excludes cap hits; Refusals has every refusal,
// cap hits included, by outcome.
type summaryCounts struct {
	Calls     int64            `json:"calls"`
	Forwarded int64            `json:"forwarded"`
	Replays   int64            `json:"replays"`
	CapHits   int64            `json:"cap_hits"`
	Refused   int64            `json:"refused"`
	Refusals  map[string]int64 `json:"refusals"`
	// RefusalsByRule counts the rule_denied refusals by the key's rule
	// that refused them (once_per, rate...); absent when there are none.
	RefusalsByRule map[string]int64 `json:"refusals_by_rule,omitempty"`
	SpentUSD       money.Micros     `json:"spent_usd"`
	ReservedUSD    money.Micros     `json:"reserved_usd"`
}

func (c *summaryCounts) add(r ledger.SummaryRow) {
	if c.Refusals == nil {
		c.Refusals = map[string]int64{}
	}
	c.Calls += r.Calls
	c.Forwarded += r.Forwarded - r.Replays
	c.Replays += r.Replays
	c.CapHits += r.CapHits
	c.Refused += r.Refused
	if n := r.CapHits + r.Refused; n > 0 {
		c.Refusals[r.Outcome] += n
	}
	if r.Rule != "" {
		if c.RefusalsByRule == nil {
			c.RefusalsByRule = map[string]int64{}
		}
		c.RefusalsByRule[r.Rule] += r.Calls
	}
	c.SpentUSD += r.Spent
	c.ReservedUSD += r.Reserved
}

type runBucket struct {
	AgentRunLabel string `json:"agent_run_label"`
	summaryCounts
}

type vendorBucket struct {
	Vendor string `json:"vendor"`
	summaryCounts
}

type endpointBucket struct {
	Vendor   string `json:"vendor"`
	Endpoint string `json:"endpoint"`
	summaryCounts
}

// summaryKey is one key of a run with its cap and what remains of it.
type summaryKey struct {
	KeyID        string        `json:"key_id"`
	Vendor       string        `json:"vendor"`
	Status       string        `json:"status"`
	DailyUSDCap  *money.Micros `json:"daily_usd_cap"`
	TotalUSDCap  *money.Micros `json:"total_usd_cap"`
	SpentUSD     money.Micros  `json:"spent_usd"`
	ReservedUSD  money.Micros  `json:"reserved_usd"`
	RemainingUSD money.Micros  `json:"remaining_usd"`
	ExpiresAt    string        `json:"expires_at"`
	// Rules are the key's rules, omitted when it has none.
	Rules *rules.Rules `json:"rules,omitempty"`
}

// summaryView is the answer to GET /vault/summary. AgentRunLabel and Day
// echo the filters (null when not given); Keys is set for a run; ByRun
// for a day view across runs.
type summaryView struct {
	AgentRunLabel *string `json:"agent_run_label"`
	Day           *string `json:"day"`
	summaryCounts
	Keys       []summaryKey     `json:"keys,omitempty"`
	ByRun      []runBucket      `json:"by_run,omitempty"`
	ByVendor   []vendorBucket   `json:"by_vendor"`
	ByEndpoint []endpointBucket `json:"by_endpoint"`
}

// summaryRequest is a parsed GET /vault/summary query.
type summaryRequest struct {
	filter ledger.SummaryFilter
	day    string
	csv    bool
}

// summary serves GET /vault/summary?agent_run_label=…&day=YYYY-MM-DD&format=…:
// a run, a UTC day across runs, or a run on one day. A run with no calls is
// all zeros, not a 404.
func (h *Handler) summary(w http.ResponseWriter, r *http.Request) error {
	if err := requireRole(r, RoleAdmin, RoleReader, RoleIssuer, RoleApprover); err != nil {
		return err
	}
	req, err := parseSummaryRequest(r)
	if err != nil {
		return err
	}
	if principalOf(r).Role == RoleIssuer {
		if err := h.issuerOwnsRun(r, req.filter.RunLabel); err != nil {
			return err
		}
	}
	rows, err := h.store.Summary(r.Context(), req.filter)
	if err != nil {
		return err
	}
	if req.csv {
		return h.summaryCSV(w, req, rows)
	}
	out := buildSummary(rows)
	if req.filter.RunLabel != "" {
		out.AgentRunLabel = &req.filter.RunLabel
		if out.Keys, err = h.runKeys(r, req.filter.RunLabel); err != nil {
			return err
		}
		out.ByRun = nil
	}
	if req.day != "" {
		out.Day = &req.day
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func parseSummaryRequest(r *http.Request) (summaryRequest, error) {
	var req summaryRequest
	q, err := parseQuery(r, "agent_run_label", "day", "format")
	if err != nil {
		return req, err
	}
	if req.filter.RunLabel, err = textParam(q, "agent_run_label", maxLabelLength*4); err != nil {
		return req, err
	}
	if req.filter.Day, err = dayParam(q); err != nil {
		return req, err
	}
	req.day = q.Get("day")
	if req.filter.RunLabel == "" && req.day == "" {
		return req, &apiError{Status: http.StatusBadRequest, Code: codeParameterMissing,
			Message: "agent_run_label or day is required", Field: "agent_run_label"}
	}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		req.csv = true
	default:
		return req, invalidField("format", "format must be json or csv")
	}
	return req, nil
}

// issuerOwnsRun lets an issuer read the summary of a run it alone issued
// keys for (a Windmill error handler reads what its run spent): the run has
// at least one key and every key of it was issued by this token. A day view
// across runs, a run with another token's keys and a run with no keys
// answer 403, 404 and 404: an issuer learns nothing of others' spend.
func (h *Handler) issuerOwnsRun(r *http.Request, label string) error {
	if label == "" {
		return &apiError{Status: http.StatusForbidden, Code: codeForbidden,
			Message: "an issuer token reads the summary of its own runs: give agent_run_label"}
	}
	p := principalOf(r)
	f := ledger.KeyFilter{RunLabel: label, Now: h.clock(), Limit: maxPageLimit}
	seen := 0
	for seen < maxRunKeys {
		keys, next, err := h.store.ListKeys(r.Context(), f)
		if err != nil {
			return err
		}
		for _, u := range keys {
			if !p.owns(u.Key) {
				return errNoRun(label)
			}
		}
		seen += len(keys)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if seen == 0 {
		return errNoRun(label)
	}
	return nil
}

// errNoRun is the 404 of a run an issuer may not read.
func errNoRun(label string) error {
	return &apiError{Status: http.StatusNotFound, Code: codeNotFound,
		Message: "no run " + strconv.Quote(label) + " with keys this token issued"}
}

// runKeys lists every key of a run with its cap and remaining, oldest first.
func (h *Handler) runKeys(r *http.Request, label string) ([]summaryKey, error) {
	now := h.clock()
	out := []summaryKey{}
	f := ledger.KeyFilter{RunLabel: label, Now: now, Limit: maxPageLimit}
	for len(out) < maxRunKeys {
		keys, next, err := h.store.ListKeys(r.Context(), f)
		if err != nil {
			return nil, err
		}
		for _, u := range keys {
			out = append(out, summaryKey{
				KeyID: u.ID, Vendor: u.Vendor, Status: u.Status(now),
				DailyUSDCap: u.DailyCap, TotalUSDCap: u.TotalCap,
				SpentUSD: u.Spent, ReservedUSD: u.Reserved, RemainingUSD: remaining(u),
				ExpiresAt: formatTime(u.ExpiresAt), Rules: u.Rules,
			})
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	// ListKeys is newest first; a run reads in the order it was issued.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// endpointName is the bucket a row's endpoint is shown under.
func endpointName(endpoint string) string {
	if endpoint == "" {
		return BucketRefusedBeforeMatching
	}
	return endpoint
}

// buildSummary sums the rows in integer Micros, by run, vendor and endpoint
// and overall.
func buildSummary(rows []ledger.SummaryRow) summaryView {
	out := summaryView{
		summaryCounts: summaryCounts{Refusals: map[string]int64{}},
		ByRun:         []runBucket{},
		ByVendor:      []vendorBucket{},
		ByEndpoint:    []endpointBucket{},
	}
	runs, vendors, endpoints := map[string]int{}, map[string]int{}, map[[2]string]int{}
	for _, row := range rows {
		out.add(row)
		i, ok := runs[row.RunLabel]
		if !ok {
			i = len(out.ByRun)
			runs[row.RunLabel] = i
			out.ByRun = append(out.ByRun, runBucket{AgentRunLabel: row.RunLabel})
		}
		out.ByRun[i].add(row)
		i, ok = vendors[row.Vendor]
		if !ok {
			i = len(out.ByVendor)
			vendors[row.Vendor] = i
			out.ByVendor = append(out.ByVendor, vendorBucket{Vendor: row.Vendor})
		}
		out.ByVendor[i].add(row)
		ek := [2]string{row.Vendor, endpointName(row.Endpoint)}
		i, ok = endpoints[ek]
		if !ok {
			i = len(out.ByEndpoint)
			endpoints[ek] = i
			out.ByEndpoint = append(out.ByEndpoint, endpointBucket{Vendor: ek[0], Endpoint: ek[1]})
		}
		out.ByEndpoint[i].add(row)
	}
	sort.SliceStable(out.ByRun, func(i, j int) bool { return out.ByRun[i].AgentRunLabel < out.ByRun[j].AgentRunLabel })
	sort.SliceStable(out.ByVendor, func(i, j int) bool { return out.ByVendor[i].Vendor < out.ByVendor[j].Vendor })
	sort.SliceStable(out.ByEndpoint, func(i, j int) bool {
		a, b := out.ByEndpoint[i], out.ByEndpoint[j]
		if a.Vendor != b.Vendor {
			return a.Vendor < b.Vendor
		}
		return a.Endpoint < b.Endpoint
	})
	return out
}
