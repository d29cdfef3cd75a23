package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

func init() {
	register(command{name: "issue", run: runIssue, short: "issue a vault key for a run",
		usage: "issue --vendor NAME (--total-usd-cap N | --daily-usd-cap N) --endpoint 'METHOD /path' [--endpoint …] [--run LABEL] [--expires-in 2h] [--metadata JSON] " +
			"[--max-call-usd N] [--max-calls N] [--rate 30/1m] [--allow SUBJECT=V1,V2 …] [--once-per SUBJECT] " +
			"[--approval-above-usd N [--approval-wait 30s] [--approval-ttl 1h]]"})
	register(command{name: "keys", run: runKeys, short: "list vault keys with their spend",
		usage: "keys [--run LABEL] [--status active|expired|revoked] [--vendor NAME] [--limit N]"})
	register(command{name: "patch", run: runPatch, short: "change a key's caps, expiry, allowlist, rules or approval rule",
		usage: "patch KEY_ID [--total-usd-cap N] [--daily-usd-cap N] [--expires-in D] [--endpoint 'METHOD /path' …] " +
			"[--max-call-usd N] [--max-calls N] [--rate 30/1m] [--allow SUBJECT=V1,V2 …] [--once-per SUBJECT] " +
			"[--approval-above-usd N [--approval-wait 30s] [--approval-ttl 1h] | --no-approval]"})
	register(command{name: "revoke", run: runRevoke, short: "revoke a key, or every key of a run",
		usage: "revoke (KEY_ID | --run LABEL)"})
}

func runIssue(c *ctx, args []string) error {
	f := c.flags()
	vendor := f.String("vendor", "", "vendor of the key: stripe, twilio, resend or a declared one (required)")
	total := f.String("total-usd-cap", "", "lifetime cap in USD")
	daily := f.String("daily-usd-cap", "", "cap per UTC day in USD")
	var endpoints listFlag
	f.Var(&endpoints, "endpoint", "allowed endpoint, e.g. 'POST /v1/payment_intents' (repeatable)")
	run := f.String("run", "", "agent_run_label of the key")
	expires := f.String("expires-in", "", "time to live, e.g. 2h (default: the server's)")
	meta := f.String("metadata", "", "a JSON object kept with the key")
	rf := addRuleFlags(f)
	af := addApprovalFlags(f, false)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	body := map[string]any{"allowed_endpoints": []string(endpoints)}
	if *vendor == "" {
		return &usageError{msg: "--vendor is required", usage: c.usage}
	}
	body["vendor"] = *vendor
	if *total == "" && *daily == "" {
		return &usageError{msg: "give --total-usd-cap, --daily-usd-cap or both", usage: c.usage}
	}
	if err := putUSD(body, "total_usd_cap", "total-usd-cap", *total); err != nil {
		return err
	}
	if err := putUSD(body, "daily_usd_cap", "daily-usd-cap", *daily); err != nil {
		return err
	}
	if *run != "" {
		body["agent_run_label"] = *run
	}
	if *expires != "" {
		body["expires_in"] = *expires
	}
	if *meta != "" {
		if !json.Valid([]byte(*meta)) {
			return &usageError{msg: "--metadata is not valid JSON", usage: c.usage}
		}
		body["metadata"] = json.RawMessage(*meta)
	}
	if rf.any(f) {
		rules := map[string]any{}
		if err := rf.apply(rules); err != nil {
			return err
		}
		body["rules"] = rules
	}
	if err := af.put(f, body); err != nil {
		return err
	}
	var k keyView
	if printed, err := c.callJSON("POST", "/vault/keys", body, &k); err != nil || printed {
		return err
	}
	t := newTable(c.cfg.Stdout, "KEY ID", "VENDOR", "RUN", "TOTAL CAP", "DAILY CAP", "EXPIRES")
	t.row(k.KeyID, k.Vendor, orDash(k.AgentRunLabel), dollarsPtr(k.TotalUSDCap), dollarsPtr(k.DailyUSDCap), shortTime(k.ExpiresAt))
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.cfg.Stdout, "\nvault key (shown once, give it to the run's scripts):\n%s\n", k.VaultKey)
	return nil
}

func putUSD(body map[string]any, field, flagName, v string) error {
	if v == "" {
		return nil
	}
	n, err := usd(flagName, v)
	if err != nil {
		return err
	}
	body[field] = n
	return nil
}

func runKeys(c *ctx, args []string) error {
	f := c.flags()
	run := f.String("run", "", "only the keys of this agent_run_label")
	status := f.String("status", "", "only keys in this status: active, expired or revoked")
	vendor := f.String("vendor", "", "only keys of this vendor")
	limit := f.Int("limit", 100, "at most this many keys (1 to 1000)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return &usageError{msg: "--limit must be from 1 to 1000", usage: c.usage}
	}
	q := url.Values{}
	for k, v := range map[string]string{"agent_run_label": *run, "status": *status, "vendor": *vendor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(*limit))
	var list keyList
	if printed, err := c.callJSON("GET", "/vault/keys?"+q.Encode(), nil, &list); err != nil || printed {
		return err
	}
	t := newTable(c.cfg.Stdout, "KEY ID", "VENDOR", "RUN", "STATUS", "SPENT", "RESERVED", "REMAINING", "TOTAL CAP", "DAILY CAP", "CALLS", "CAP HITS", "EXPIRES")
	for _, k := range list.Data {
		t.row(k.KeyID, k.Vendor, orDash(k.AgentRunLabel), k.Status, dollars(k.SpentUSD), dollars(k.ReservedUSD),
			dollars(k.RemainingUSD), dollarsPtr(k.TotalUSDCap), dollarsPtr(k.DailyUSDCap),
			strconv.FormatInt(k.Calls, 10), strconv.FormatInt(k.CapHits, 10), shortTime(k.ExpiresAt))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if list.NextCursor != nil {
		fmt.Fprintf(c.cfg.Stdout, "(more keys: raise --limit or narrow with --run/--status)\n")
	}
	return nil
}

func runPatch(c *ctx, args []string) error {
	f := c.flags()
	total := f.String("total-usd-cap", "", "new lifetime cap in USD")
	daily := f.String("daily-usd-cap", "", "new cap per UTC day in USD")
	expires := f.String("expires-in", "", "new time to live from now, e.g. 30m")
	var endpoints listFlag
	f.Var(&endpoints, "endpoint", "the narrowed allowlist, one entry per flag (repeatable)")
	rf := addRuleFlags(f)
	af := addApprovalFlags(f, true)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	body := map[string]any{}
	if err := putUSD(body, "total_usd_cap", "total-usd-cap", *total); err != nil {
		return err
	}
	if err := putUSD(body, "daily_usd_cap", "daily-usd-cap", *daily); err != nil {
		return err
	}
	if *expires != "" {
		body["expires_in"] = *expires
	}
	if f.set("endpoint") {
		body["allowed_endpoints"] = []string(endpoints)
	}
	if rf.any(f) {
		rules, err := patchedRules(c, pos[0], rf)
		if err != nil {
			return err
		}
		body["rules"] = rules
	}
	if err := af.put(f, body); err != nil {
		return err
	}
	if len(body) == 0 {
		return &usageError{msg: "nothing to change: give a cap, --expires-in, --endpoint, a rule or an approval rule", usage: c.usage}
	}
	var k keyView
	if printed, err := c.callJSON("PATCH", "/vault/keys/"+url.PathEscape(pos[0]), body, &k); err != nil || printed {
		return err
	}
	return printKey(c, k)
}

func runRevoke(c *ctx, args []string) error {
	f := c.flags()
	run := f.String("run", "", "revoke every key of this agent_run_label")
	pos, err := f.parse(args, 0, 1)
	if err != nil {
		return err
	}
	if (len(pos) == 1) == (*run != "") {
		return &usageError{msg: "give a KEY_ID or --run LABEL, not both", usage: c.usage}
	}
	if *run != "" {
		raw, err := c.call("DELETE", "/vault/keys?agent_run_label="+url.QueryEscape(*run), nil)
		if err != nil {
			return err
		}
		var res struct {
			Revoked []string `json:"revoked"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		if c.json {
			fmt.Fprintln(c.cfg.Stdout, strings.TrimSpace(string(raw)))
		} else if len(res.Revoked) > 0 {
			fmt.Fprintf(c.cfg.Stdout, "revoked %d key(s) of run %s: %s\n", len(res.Revoked), *run, strings.Join(res.Revoked, " "))
		}
		if len(res.Revoked) == 0 {
			return fmt.Errorf("%w: no active key of run %q to revoke (no such run, its keys already revoked or expired, or, with an issuer token, none of them its own)",
				errNothingDone, *run)
		}
		return nil
	}
	var k keyView
	if printed, err := c.callJSON("DELETE", "/vault/keys/"+url.PathEscape(pos[0]), nil, &k); err != nil || printed {
		return err
	}
	return printKey(c, k)
}

// printKey shows one key as a two-column table.
func printKey(c *ctx, k keyView) error {
	t := newTable(c.cfg.Stdout, "KEY ID", "STATUS", "SPENT", "RESERVED", "REMAINING", "TOTAL CAP", "DAILY CAP", "EXPIRES")
	t.row(k.KeyID, k.Status, dollars(k.SpentUSD), dollars(k.ReservedUSD), dollars(k.RemainingUSD),
		dollarsPtr(k.TotalUSDCap), dollarsPtr(k.DailyUSDCap), shortTime(k.ExpiresAt))
	return t.flush()
}
