package alerts

import (
	"encoding/json"
	"fmt"
	"strings"
)

// slackEscaper escapes what Slack's mrkdwn reads as markup: "&", "<" and
// ">" (docs.slack.dev, "Formatting text for app surfaces": escaping), so
// a run label or a path can carry neither a mention ("<!channel>") nor a
// disguised link ("<http://evil|ok>"). "@everyone" and "@here", which
// Discord's Slack-compatible endpoint reads as mentions, get a zero-width
// space after the "@".
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;",
	"@everyone", "@\u200beveryone", "@here", "@\u200bhere")

// Text is the one-line, human message of an event (the Slack body). Every
// value from the event is escaped (slackEscaper): run labels, paths and
// endpoints come from clients.
func Text(typ string, d map[string]any) string {
	s := func(k string) string { return slackEscaper.Replace(value(d, k)) }
	usd := func(k string) string { return "$" + s(k) }
	run := s("agent_run_label")
	if run == "" {
		run = "(no run label)"
	}
	switch typ {
	case EventKeyThreshold:
		return fmt.Sprintf("Keybrake: run %s, key %s (%s) has spent %s of its %s cap of %s (%s%%).",
			run, s("key_id"), s("vendor"), usd("spent_usd"), s("cap"), usd("cap_usd"), s("threshold_percent"))
	case EventKeyCapHit:
		return fmt.Sprintf("Keybrake: run %s, key %s (%s) hit its cap: %s refused (%s left).",
			run, s("key_id"), s("vendor"), s("endpoint"), usd("remaining_usd"))
	case EventKeyRevoked:
		return fmt.Sprintf("Keybrake: run %s, key %s (%s) was revoked.", run, s("key_id"), s("vendor"))
	case EventCallUnknown:
		return fmt.Sprintf("Keybrake: run %s, call %s %s %s (%s) has an unknown outcome; %s stays reserved until it is resolved.",
			run, s("call_id"), s("method"), s("path"), s("vendor"), usd("reserved_usd"))
	case EventApprovalRequested:
		return fmt.Sprintf("Keybrake: run %s asks approval %s for %s %s (%s, %s): decide at %s",
			run, s("approval_id"), s("method"), s("path"), s("vendor"), usd("estimate_usd"), s("url"))
	case EventApprovalDecided:
		return fmt.Sprintf("Keybrake: approval %s (run %s, %s %s, %s) was %s by %s: %s",
			s("approval_id"), run, s("method"), s("path"), usd("estimate_usd"), s("status"), s("decided_by"), s("reason"))
	case EventApprovalExpired:
		return fmt.Sprintf("Keybrake: approval %s (run %s, %s %s, %s) expired undecided.",
			s("approval_id"), run, s("method"), s("path"), usd("estimate_usd"))
	case EventBudgetThreshold:
		return fmt.Sprintf("Keybrake: token %s has spent %s of its %s budget of %s (%s%%).",
			s("token_id"), usd("spent_usd"), s("budget"), usd("cap_usd"), s("threshold_percent"))
	}
	return "Keybrake: " + typ
}

// value is an event field as text.
func value(d map[string]any, k string) string {
	switch v := d[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
