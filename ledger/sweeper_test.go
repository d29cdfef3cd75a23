package ledger_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
	"github.com/keybrake/keybrake/money"
)

func TestStaleSweeperMarksOnlyOldReservations(t *testing.T) {
	ctx := context.Background()
	s, err := ledger.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	total := 100 * money.PerDollar
	k := ledger.Key{ID: "vkSweep0000000000000001", Hash: ledger.HashSecret("sweep"), Vendor: "stripe", TotalCap: &total,
		AllowedEndpoints: []string{"POST /v1/payment_intents"}, CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	reserve := func(id string, at time.Time) {
		if _, err := s.Reserve(ctx, ledger.ReserveRequest{CallID: id, KeyID: k.ID, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: 5 * money.PerDollar, Now: at}); err != nil {
			t.Fatal(err)
		}
	}
	reserve("clOrphan000000000000001", t0)                     // its node died
	reserve("clInFlight0000000000001", t0.Add(10*time.Minute)) // still young
	reserve("clSettled00000000000001", t0)
	if err := s.Settle(ctx, "clSettled00000000000001", ledger.Settlement{StatusCode: 200, Cost: 5 * money.PerDollar, Now: t0}); err != nil {
		t.Fatal(err)
	}

	var told []string
	sw := &ledger.StaleSweeper{Store: s, Vendors: []string{"stripe", "twilio"}, After: 15 * time.Minute,
		Now:    func() time.Time { return t0.Add(20 * time.Minute) },
		Marked: func(_ context.Context, c ledger.Call, _ time.Time) { told = append(told, c.CallID) }}
	n, err := sw.RunOnce(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v; want 1 call marked", n, err)
	}
	if len(told) != 1 || told[0] != "clOrphan000000000000001" {
		t.Errorf("Marked was told of %v; want the orphan only", told)
	}
	states := map[string]string{}
	calls, _, err := s.Audit(ctx, ledger.AuditFilter{KeyID: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		states[c.CallID] = c.CostState
	}
	if states["clOrphan000000000000001"] != ledger.CostUnknown || states["clInFlight0000000000001"] != ledger.CostReserved ||
		states["clSettled00000000000001"] != ledger.CostSettled {
		t.Fatalf("states = %v", states)
	}
	u, err := s.GetKey(ctx, k.ID, t0)
	if err != nil {
		t.Fatal(err)
	}
	if u.Reserved != 10*money.PerDollar || u.Spent != 5*money.PerDollar {
		t.Fatalf("usage = spent %s reserved %s; the orphan's money must stay reserved", u.Spent, u.Reserved)
	}
	if n, err := sw.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep = %d, %v; want nothing left", n, err)
	}

	// Run stops when its context ends.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sw.Run(runCtx) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
}
