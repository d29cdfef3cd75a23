package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// TestRetentionAndExport runs a fleet's Caddy with retain_calls 7d on a
// Postgres ledger holding a key's old calls: it deletes the old settled
// one and keeps the old reservation and the recent calls, counts the
// deletion in keybrake_calls_deleted_total, and leaves the key's spent_usd
// and the run's summary as they were. The export streams what is left,
// with its completion trailer, through Caddy.
func TestRetentionAndExport(t *testing.T) {
	need(t, true)
	dsn := freshDatabase(t)
	store, err := ledger.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := now.AddDate(0, 0, -40)
	cap := ledgerMicros(100)
	key := ledger.Key{ID: "vkRetention000000000001", Hash: ledger.HashSecret("kbRetentionKey00000000000000000000000000000"),
		Vendor: "stripe", TotalCap: &cap, AllowedEndpoints: []string{"POST /v1/payment_intents"},
		CreatedAt: old, ExpiresAt: now.Add(time.Hour), RunLabel: "retention"}
	if err := store.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	reserve := func(id string, at time.Time) {
		t.Helper()
		if _, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: id, KeyID: key.ID, Vendor: "stripe", Method: "POST",
			Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: ledgerMicros(2), Now: at}); err != nil {
			t.Fatal(err)
		}
	}
	reserve("clRetainOldSettled000001", old)
	if err := store.Settle(ctx, "clRetainOldSettled000001", ledger.Settlement{StatusCode: 200, Cost: ledgerMicros(1), Now: old}); err != nil {
		t.Fatal(err)
	}
	reserve("clRetainOldReserved00001", old.Add(time.Second))
	reserve("clRetainRecent0000000001", now.Add(-time.Minute))
	if err := store.Settle(ctx, "clRetainRecent0000000001", ledger.Settlement{StatusCode: 200, Cost: ledgerMicros(1), Now: now}); err != nil {
		t.Fatal(err)
	}
	before, err := store.GetKey(ctx, key.ID, now)
	if err != nil {
		t.Fatal(err)
	}

	n := startNode(t, nodeConfig{ledger: dsn, caddyfile: writeCaddyfile(t,
		"\t\tretain_calls 7d\n\t\tvendor stripe {\n\t\t\tsecret_key "+realSecret+"\n\t\t}\n", "")})
	kept := []string{"clRetainOldReserved00001", "clRetainRecent0000000001"}
	calls, ok := waitAudit(t, n, "retention", 20*time.Second, func(calls []auditCall) bool { return len(calls) == len(kept) })
	if !ok {
		t.Fatalf("retention left %d calls; want %d: %+v", len(calls), len(kept), calls)
	}
	for i, c := range calls {
		if c.CallID != kept[i] {
			t.Fatalf("calls kept %+v; want %v", calls, kept)
		}
	}
	if m := n.adminGet(t, "/metrics"); !strings.Contains(m, "keybrake_calls_deleted_total 1") {
		t.Errorf("keybrake_calls_deleted_total is not 1:\n%s", grepLines(m, "keybrake_calls_deleted"))
	}
	k := getKey(t, n, key.ID)
	if before.Spent != ledgerMicros(2) || k.Spent.String() != "2" || k.Reserved.String() != "2" {
		t.Errorf("key after retention: spent %s reserved %s; want spent 2 (as before: %s) and 2 reserved", k.Spent, k.Reserved, before.Spent)
	}
	if s := getSummary(t, n, "retention"); s.Calls != 3 {
		t.Errorf("summary after retention counts %d calls; want the 3 recorded", s.Calls)
	}

	req, _ := http.NewRequest("GET", n.url+"/vault/audit/export?format=jsonl&since="+old.Add(-time.Hour).Format(time.RFC3339), nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var exported []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var c auditCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		exported = append(exported, c.CallID)
	}
	if fmt.Sprint(exported) != fmt.Sprint(kept) || resp.Trailer.Get("X-Keybrake-Export-Complete") != "true" {
		t.Errorf("export: %d %v, trailers %v; want %v and X-Keybrake-Export-Complete: true", resp.StatusCode, exported, resp.Trailer, kept)
	}
}
