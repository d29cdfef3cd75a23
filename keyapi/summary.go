package keyapi

import (
	"net/http"
	"sort"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// summaryCounts are the counters shared by every level of a summary.
type summaryCounts struct {
	Calls       int64        `json:"calls"`
	Forwarded   int64        `json:"forwarded"`
	CapHits     int64        `json:"cap_hits"`
	Refused     int64        `json:"refused"`
	SpentUSD    money.Micros `json:"spent_usd"`
	ReservedUSD money.Micros `json:"reserved_usd"`
}

func (c *summaryCounts) add(r ledger.SummaryRow) {
	c.Calls += r.Calls
	c.Forwarded += r.Forwarded
	c.CapHits += r.CapHits
	c.Refused += r.Refused
	c.SpentUSD += r.Spent
	c.ReservedUSD += r.Reserved
}

type vendorSummary struct {
	Vendor string `json:"vendor"`
	summaryCounts
}

type endpointSummary struct {
	Vendor   string `json:"vendor"`
	Endpoint string `json:"endpoint"`
	summaryCounts
}

// runSummary is the answer to GET /vault/summary.
type runSummary struct {
	AgentRunLabel string `json:"agent_run_label"`
	summaryCounts
	ByVendor   []vendorSummary   `json:"by_vendor"`
	ByEndpoint []endpointSummary `json:"by_endpoint"`
}

// summary serves GET /vault/summary?agent_run_label=…. A run with no calls
// is all zeros, not a 404.
func (h *Handler) summary(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r, "agent_run_label")
	if err != nil {
		return err
	}
	label, err := textParam(q, "agent_run_label", maxLabelLength*4)
	if err != nil {
		return err
	}
	if label == "" {
		return missingField("agent_run_label")
	}
	rows, err := h.store.Summary(r.Context(), label)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, buildSummary(label, rows))
	return nil
}

// buildSummary sums the rows in integer Micros, by vendor and overall.
func buildSummary(label string, rows []ledger.SummaryRow) runSummary {
	out := runSummary{
		AgentRunLabel: label,
		ByVendor:      []vendorSummary{},
		ByEndpoint:    make([]endpointSummary, 0, len(rows)),
	}
	byVendor := map[string]int{}
	for _, row := range rows {
		out.add(row)
		i, ok := byVendor[row.Vendor]
		if !ok {
			i = len(out.ByVendor)
			byVendor[row.Vendor] = i
			out.ByVendor = append(out.ByVendor, vendorSummary{Vendor: row.Vendor})
		}
		out.ByVendor[i].add(row)
		e := endpointSummary{Vendor: row.Vendor, Endpoint: row.Endpoint}
		e.add(row)
		out.ByEndpoint = append(out.ByEndpoint, e)
	}
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
