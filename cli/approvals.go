package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

func init() {
	register(command{name: "approvals", run: runApprovals, short: "list approvals (pending by default)",
		usage: "approvals [--status pending|approved|denied|expired|consumed|all] [--key KEY_ID]"})
	register(command{name: "approve", run: runDecide("approve"), short: "approve a call waiting for a person (admin, approver)",
		usage: "approve APPROVAL_ID [--reason TEXT]"})
	register(command{name: "deny", run: runDecide("deny"), short: "deny a call waiting for a person (admin, approver)",
		usage: "deny APPROVAL_ID [--reason TEXT]"})
}

// approvalView is an approval as the API answers it.
type approvalView struct {
	ApprovalID     string      `json:"approval_id"`
	Status         string      `json:"status"`
	KeyID          string      `json:"key_id"`
	AgentRunLabel  string      `json:"agent_run_label"`
	Vendor         string      `json:"vendor"`
	Method         string      `json:"method"`
	Path           string      `json:"path"`
	EstimateUSD    json.Number `json:"estimate_usd"`
	RequestedAt    string      `json:"requested_at"`
	ExpiresAt      string      `json:"expires_at"`
	DecidedBy      *string     `json:"decided_by"`
	Reason         string      `json:"reason"`
	DecidedAfterMS *int64      `json:"decided_after_ms"`
	ConsumedBy     *string     `json:"consumed_by"`
}

func runApprovals(c *ctx, args []string) error {
	f := c.flags()
	status := f.String("status", "pending", "pending, approved, denied, expired, consumed, or all")
	key := f.String("key", "", "only the approvals of this key")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	q := url.Values{}
	if *status != "all" {
		q.Set("status", *status)
	}
	if *key != "" {
		q.Set("key_id", *key)
	}
	var list struct {
		Approvals []approvalView `json:"approvals"`
	}
	if printed, err := c.callJSON("GET", "/vault/approvals?"+q.Encode(), nil, &list); err != nil || printed {
		return err
	}
	t := newTable(c.cfg.Stdout, "APPROVAL ID", "STATUS", "RUN", "CALL", "ESTIMATE", "REQUESTED", "DECIDED BY", "REASON")
	for _, a := range list.Approvals {
		t.row(a.ApprovalID, a.Status, orDash(a.AgentRunLabel), a.Vendor+" "+a.Method+" "+a.Path, dollars(a.EstimateUSD),
			shortTime(a.RequestedAt), orDash(deref(a.DecidedBy)), orDash(a.Reason))
	}
	return t.flush()
}

func runDecide(verb string) func(c *ctx, args []string) error {
	return func(c *ctx, args []string) error {
		f := c.flags()
		reason := f.String("reason", "", "why, for the audit and the run's people")
		pos, err := f.parse(args, 1, 1)
		if err != nil {
			return err
		}
		var a approvalView
		path := "/vault/approvals/" + url.PathEscape(pos[0]) + "/" + verb
		if printed, err := c.callJSON("POST", path, map[string]any{"reason": *reason}, &a); err != nil || printed {
			return err
		}
		after := ""
		if a.DecidedAfterMS != nil {
			after = " after " + strconv.FormatInt(*a.DecidedAfterMS, 10) + " ms"
		}
		_, err = fmt.Fprintf(c.cfg.Stdout, "%s %s (%s %s %s, %s)%s\n", a.Status, a.ApprovalID, a.Vendor, a.Method, a.Path,
			dollars(a.EstimateUSD), after)
		return err
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
