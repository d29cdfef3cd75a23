package cli

// approvalFlags are the flags of a key's approval rule (docs/approvals.md),
// shared by issue and patch. The rule is sent whole: a patch that gives one
// replaces the key's (wait and ttl not given take their defaults).
type approvalFlags struct {
	above, wait, ttl *string
	remove           *bool // patch only: --no-approval
}

func addApprovalFlags(f *flags, patch bool) *approvalFlags {
	a := &approvalFlags{
		above: f.String("approval-above-usd", "", "approval: calls estimated above this many USD wait for a person (0: every priced call)"),
		wait:  f.String("approval-wait", "", "approval: how long a call is held for the decision, 1s to 60s (default 30s)"),
		ttl:   f.String("approval-ttl", "", "approval: how long a decision stays usable by a retry (default 1h)"),
	}
	if patch {
		a.remove = f.Bool("no-approval", false, "remove the key's approval rule (an admin only)")
	}
	return a
}

// put sets body's "approval" from the flags given, if any: the rule, or {}
// to remove it.
func (a *approvalFlags) put(f *flags, body map[string]any) error {
	removing := a.remove != nil && *a.remove
	given := f.set("approval-above-usd") || f.set("approval-wait") || f.set("approval-ttl")
	switch {
	case removing && given:
		return &usageError{msg: "--no-approval takes no other --approval-… flag"}
	case removing:
		body["approval"] = map[string]any{}
		return nil
	case !given:
		return nil
	case *a.above == "":
		return &usageError{msg: "--approval-wait and --approval-ttl need --approval-above-usd: the rule is sent whole"}
	}
	above, err := usd("approval-above-usd", *a.above)
	if err != nil {
		return err
	}
	rule := map[string]any{"above_usd": above}
	if *a.wait != "" {
		rule["wait"] = *a.wait
	}
	if *a.ttl != "" {
		rule["ttl"] = *a.ttl
	}
	body["approval"] = rule
	return nil
}
