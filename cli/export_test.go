package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// TestExport streams a run's calls, over more than one page of the API,
// within --since 24h, as JSON lines and as CSV.
func TestExport(t *testing.T) {
	url, store := serverStore(t)
	code, out, errOut := run(t, url, "issue", "--vendor", "stripe", "--total-usd-cap", "1000",
		"--endpoint", "POST /v1/payment_intents", "--run", "cli/export", "--json")
	var k keyView
	if code != ExitOK || json.Unmarshal([]byte(out), &k) != nil {
		t.Fatalf("issue: exit %d: %s", code, errOut)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	const calls = 1200
	for i := range calls {
		at := now.Add(-time.Duration(calls-i) * time.Second)
		if i == 0 {
			at = now.Add(-48 * time.Hour) // outside --since 24h
		}
		if _, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: fmt.Sprintf("clCliExport%05d", i), KeyID: k.KeyID,
			Vendor: "stripe", Method: "POST", Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents",
			Estimate: money.PerDollar / 100, Now: at}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut = run(t, url, "export", "--since", "24h", "--run", "cli/export")
	if code != ExitOK {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	n := 0
	for sc.Scan() {
		var c map[string]any
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		n++
		if want := fmt.Sprintf("clCliExport%05d", n); c["call_id"] != want {
			t.Fatalf("line %d is %v; want %s", n, c["call_id"], want)
		}
	}
	if n != calls-1 {
		t.Errorf("%d calls exported; want %d", n, calls-1)
	}

	code, out, errOut = run(t, url, "export", "--format", "csv", "--since", now.Add(-10*time.Second).Format(time.RFC3339Nano))
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != ExitOK || err != nil || len(rows) != 11 || rows[0][0] != "call_id" {
		t.Fatalf("export --format csv: exit %d, %d rows (%v): %s", code, len(rows), err, errOut)
	}
	if code, _, errOut = run(t, url, "export", "--since", "yesterday"); code != ExitUsage {
		t.Errorf("--since yesterday: exit %d: %s", code, errOut)
	}
}
