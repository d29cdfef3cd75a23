package cli

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(command{name: "audit", run: runAudit, short: "list recorded calls; find the run behind a charge",
		usage: "audit [--run LABEL] [--key KEY_ID] [--vendor NAME] [--outcome O] [--txn pi_…] [--since T|1h] [--until T] [--limit N] [--csv]"})
	register(command{name: "summary", run: runSummary, short: "spend, calls, cap hits and refusals of a run or a UTC day",
		usage: "summary (--run LABEL | --day YYYY-MM-DD) [--csv]"})
}

func runAudit(c *ctx, args []string) error {
	f := c.flags()
	filters := map[string]*string{
		"agent_run_label": f.String("run", "", "only calls of this agent_run_label"),
		"key_id":          f.String("key", "", "only calls of this key"),
		"vendor":          f.String("vendor", "", "only calls to this vendor"),
		"outcome":         f.String("outcome", "", "only calls with this outcome (forwarded, cap_hit, revoked…)"),
		"vendor_txn_id":   f.String("txn", "", "the call behind this vendor transaction id (pi_…, SM…)"),
		"since":           f.String("since", "", "calls started at or after this time (RFC 3339, or how long ago: 1h, 7d)"),
		"until":           f.String("until", "", "calls started before this time (RFC 3339, or how long ago)"),
	}
	limit := f.Int("limit", 100, "at most this many calls (1 to 1000; with --csv up to 100000)")
	csv := f.Bool("csv", false, "print the API's CSV export")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := f.csvOrJSON(*csv); err != nil {
		return err
	}
	now := time.Now()
	for _, name := range []string{"since", "until"} {
		t, err := timeFlag(name, *filters[name], now)
		if err != nil {
			err.(*usageError).usage = c.usage
			return err
		}
		*filters[name] = t
	}
	q := url.Values{}
	for k, v := range filters {
		if *v != "" {
			q.Set(k, *v)
		}
	}
	q.Set("limit", strconv.Itoa(*limit))
	if *csv {
		q.Set("format", "csv")
		return c.printRaw("/vault/audit?" + q.Encode())
	}
	var list callList
	if printed, err := c.callJSON("GET", "/vault/audit?"+q.Encode(), nil, &list); err != nil || printed {
		return err
	}
	t := newTable(c.cfg.Stdout, "STARTED", "RUN", "KEY ID", "REQUEST", "OUTCOME", "STATUS", "COST", "STATE", "VENDOR TXN")
	for _, k := range list.Data {
		t.row(shortTime(k.StartedAt), orDash(k.AgentRunLabel), orDash(k.KeyID), k.Method+" "+k.Path, k.Outcome,
			strconv.Itoa(k.StatusCode), dollars(k.CostUSD), k.CostState, orDash(k.VendorTxnID))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if list.NextCursor != nil {
		fmt.Fprintf(c.cfg.Stdout, "(more calls: raise --limit, or use --csv for all)\n")
	}
	return nil
}

func runSummary(c *ctx, args []string) error {
	f := c.flags()
	run := f.String("run", "", "the run's agent_run_label")
	day := f.String("day", "", "a UTC day, YYYY-MM-DD: every run's calls that started that day")
	csv := f.Bool("csv", false, "print the API's CSV (one row per run, vendor, endpoint and outcome)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *run == "" && *day == "" {
		return &usageError{msg: "give --run LABEL, --day YYYY-MM-DD or both", usage: c.usage}
	}
	if err := f.csvOrJSON(*csv); err != nil {
		return err
	}
	q := url.Values{}
	if *run != "" {
		q.Set("agent_run_label", *run)
	}
	if *day != "" {
		q.Set("day", *day)
	}
	if *csv {
		q.Set("format", "csv")
		return c.printRaw("/vault/summary?" + q.Encode())
	}
	var s summaryView
	if printed, err := c.callJSON("GET", "/vault/summary?"+q.Encode(), nil, &s); err != nil || printed {
		return err
	}
	w := c.cfg.Stdout
	title := []string{}
	if s.AgentRunLabel != nil {
		title = append(title, "run "+*s.AgentRunLabel)
	}
	if s.Day != nil {
		title = append(title, "day "+*s.Day+" (UTC)")
	}
	fmt.Fprintf(w, "%s\n\n", strings.Join(title, ", "))
	t := newTable(w, "SPENT", "RESERVED", "CALLS", "FORWARDED", "REPLAYS", "CAP HITS", "REFUSED")
	t.row(dollars(s.SpentUSD), dollars(s.ReservedUSD), itoa(s.Calls), itoa(s.Forwarded), itoa(s.Replays), itoa(s.CapHits), itoa(s.Refused))
	if err := t.flush(); err != nil {
		return err
	}
	if len(s.Refusals) > 0 {
		reasons := make([]string, 0, len(s.Refusals))
		for r, n := range s.Refusals {
			reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(reasons)
		fmt.Fprintf(w, "\nrefusals by reason: %s\n", strings.Join(reasons, ", "))
	}
	if len(s.Keys) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "KEY ID", "VENDOR", "STATUS", "SPENT", "RESERVED", "REMAINING", "TOTAL CAP", "DAILY CAP")
		for _, k := range s.Keys {
			t.row(k.KeyID, k.Vendor, k.Status, dollars(k.SpentUSD), dollars(k.ReservedUSD), dollars(k.RemainingUSD),
				dollarsPtr(k.TotalUSDCap), dollarsPtr(k.DailyUSDCap))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if s.AgentRunLabel == nil && len(s.ByRun) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "RUN", "SPENT", "RESERVED", "CALLS", "FORWARDED", "REPLAYS", "CAP HITS", "REFUSED")
		for _, r := range s.ByRun {
			t.row(orDash(r.AgentRunLabel), dollars(r.SpentUSD), dollars(r.ReservedUSD), itoa(r.Calls), itoa(r.Forwarded),
				itoa(r.Replays), itoa(r.CapHits), itoa(r.Refused))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(s.ByEndpoint) > 0 {
		fmt.Fprintln(w)
		t = newTable(w, "VENDOR", "ENDPOINT", "SPENT", "CALLS", "FORWARDED", "REPLAYS", "CAP HITS", "REFUSED")
		for _, e := range s.ByEndpoint {
			t.row(e.Vendor, e.Endpoint, dollars(e.SpentUSD), itoa(e.Calls), itoa(e.Forwarded), itoa(e.Replays), itoa(e.CapHits), itoa(e.Refused))
		}
		return t.flush()
	}
	return nil
}

// printRaw prints an answer as it came (CSV exports).
func (c *ctx) printRaw(path string) error {
	raw, err := c.call("GET", path, nil)
	if err != nil {
		return err
	}
	_, err = c.cfg.Stdout.Write(raw)
	return err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
