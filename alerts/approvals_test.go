package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// TestApprovalEvents: requested, decided and expired are each stored once
// per approval, with the dashboard link, and read as one Slack line.
func TestApprovalEvents(t *testing.T) {
	s := openStore(t)
	ob := s.(ledger.Outbox)
	a := &Alerter{Outbox: ob, DashboardURL: "https://kb.example.com/vault/ui/",
		Webhooks: []Webhook{{Name: "ops", URL: "https://hooks.example.com", Secret: "s"}}}
	ap := ledger.Approval{ID: "apX", KeyID: "vkX", RunLabel: "support/1", Vendor: "stripe", Method: "POST",
		Path: "/v1/refunds", Estimate: usd("60"), CallID: "clX", Status: ledger.ApprovalPending,
		RequestedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	ctx := context.Background()
	a.ApprovalRequested(ctx, ap, t0)
	a.ApprovalRequested(ctx, ap, t0) // once per approval
	ap.Status, ap.DecidedBy, ap.Reason = ledger.ApprovalDenied, "tkBoss", "duplicate"
	a.ApprovalDecided(ctx, ap, t0.Add(time.Second))
	a.ApprovalExpired(ctx, ap, t0.Add(2*time.Hour))
	events, err := ob.ClaimEvents(ctx, t0.Add(3*time.Hour), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	ledger.SortOutbox(events)
	want := []string{EventApprovalRequested, EventApprovalDecided, EventApprovalExpired}
	if len(events) != len(want) {
		t.Fatalf("%d events; want %d", len(events), len(want))
	}
	for i, e := range events {
		var env struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(e.Payload, &env); err != nil || env.Type != want[i] {
			t.Fatalf("event %d: %s (%v)", i, e.Payload, err)
		}
		if env.Data["url"] != "https://kb.example.com/vault/ui/#approvals" || env.Data["approval_id"] != "apX" {
			t.Errorf("event %s data = %v", env.Type, env.Data)
		}
		text := Text(env.Type, env.Data)
		if !strings.Contains(text, "apX") || !strings.Contains(text, "$60") {
			t.Errorf("Slack text of %s: %q", env.Type, text)
		}
	}
}
