package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
)

func init() {
	register(command{name: "tokens", run: runTokens, short: "list, create or revoke API tokens (admin)",
		usage: "tokens [list] | tokens create --name NAME --role admin|issuer|reader|approver [--policy JSON] | tokens revoke TOKEN_ID [--revoke-keys]"})
	register(command{name: "resolve", run: runResolve, short: "settle or release a call the reconciler could not (admin)",
		usage: "resolve CALL_ID (--cost-usd N | --release) --reason TEXT"})
}

func runTokens(c *ctx, args []string) error {
	sub := "list"
	if len(args) > 0 && (args[0] == "list" || args[0] == "create" || args[0] == "revoke") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "create":
		return runTokensCreate(c, args)
	case "revoke":
		return runTokensRevoke(c, args)
	}
	f := c.flags()
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	var list tokenList
	if printed, err := c.callJSON("GET", "/vault/tokens", nil, &list); err != nil || printed {
		return err
	}
	t := newTable(c.cfg.Stdout, "TOKEN ID", "NAME", "ROLE", "CREATED", "REVOKED", "POLICY")
	for _, k := range list.Data {
		revoked := "-"
		if k.RevokedAt != nil {
			revoked = shortTime(*k.RevokedAt)
		}
		t.row(k.TokenID, k.Name, k.Role, shortTime(k.CreatedAt), revoked, orDash(compactJSON(k.Policy)))
	}
	return t.flush()
}

func runTokensCreate(c *ctx, args []string) error {
	c.usage = "tokens create --name NAME --role admin|issuer|reader|approver [--policy JSON]"
	f := c.flags()
	name := f.String("name", "", "a name for people, e.g. windmill-prod (required)")
	role := f.String("role", "", "admin, issuer, reader or approver (required)")
	policy := f.String("policy", "", `the token's policy as JSON, e.g. '{"vendors":["stripe"],"max_key_usd":500}'`)
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *name == "" || *role == "" {
		return &usageError{msg: "--name and --role are required", usage: c.usage}
	}
	body := map[string]any{"name": *name, "role": *role}
	if *policy != "" {
		if !json.Valid([]byte(*policy)) {
			return &usageError{msg: "--policy is not valid JSON", usage: c.usage}
		}
		body["policy"] = json.RawMessage(*policy)
	}
	var tk tokenView
	if printed, err := c.callJSON("POST", "/vault/tokens", body, &tk); err != nil || printed {
		return err
	}
	t := newTable(c.cfg.Stdout, "TOKEN ID", "NAME", "ROLE")
	t.row(tk.TokenID, tk.Name, tk.Role)
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(c.cfg.Stdout, "\nAPI token (shown once):\n%s\n", tk.Token)
	return err
}

func runTokensRevoke(c *ctx, args []string) error {
	c.usage = "tokens revoke TOKEN_ID [--revoke-keys]"
	f := c.flags()
	keys := f.Bool("revoke-keys", false, "also revoke every key the token issued")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	path := "/vault/tokens/" + url.PathEscape(pos[0])
	if *keys {
		path += "?revoke_keys=true"
	}
	raw, err := c.call("DELETE", path, nil)
	if err != nil {
		return err
	}
	if c.json {
		_, err = c.cfg.Stdout.Write(append(raw, '\n'))
		return err
	}
	_, err = fmt.Fprintf(c.cfg.Stdout, "revoked token %s\n", pos[0])
	return err
}

func runResolve(c *ctx, args []string) error {
	f := c.flags()
	cost := f.String("cost-usd", "", "the call's real cost in USD")
	release := f.Bool("release", false, "the vendor moved no money: release the reservation")
	reason := f.String("reason", "", "why, for the audit (required)")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *reason == "" {
		return &usageError{msg: "--reason is required", usage: c.usage}
	}
	if (*cost != "") == *release {
		return &usageError{msg: "give either --cost-usd or --release", usage: c.usage}
	}
	body := map[string]any{"reason": *reason}
	if *release {
		body["release"] = true
	} else if err := putUSD(body, "cost_usd", "cost-usd", *cost); err != nil {
		return err
	}
	raw, err := c.call("POST", "/vault/calls/"+url.PathEscape(pos[0])+"/resolve", body)
	if err != nil {
		return err
	}
	if c.json {
		_, err = c.cfg.Stdout.Write(append(raw, '\n'))
		return err
	}
	var call callView
	_ = json.Unmarshal(raw, &call)
	t := newTable(c.cfg.Stdout, "CALL ID", "OUTCOME", "COST", "STATE")
	t.row(pos[0], orDash(call.Outcome), dollars(call.CostUSD), orDash(call.CostState))
	return t.flush()
}

// compactJSON renders a policy on one line; "" for none.
func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
