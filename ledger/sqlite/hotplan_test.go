package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestSQLiteHotPathPlans: on an analysed ledger, the spend path's lookups
// by idempotency key search calls_by_idempotency, not the key's calls of
// the whole replay window; a key's exposure to one object searches the
// transaction id index, not the key's calls; PendingCalls searches the
// small index of pending calls (migration 0011).
func TestSQLiteHotPathPlans(t *testing.T) {
	ctx := context.Background()
	st, err := openSQLite(ctx, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := st.(*sqliteStore)
	if _, err := s.write.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ sql, index string }{
		"original":        {sqliteFindOriginalSQL, "calls_by_idempotency"},
		"first tag":       {sqliteFirstTagSQL, "calls_by_idempotency"},
		"object exposure": {sqliteObjectExposureSQL, "calls_by_any_vendor_txn"},
		"pending calls":   {sqlitePendingCallsSQL, "calls_pending"},
	}
	for name, c := range cases {
		q := c.sql
		rows, err := s.write.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, make([]any, strings.Count(q, "?"))...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "; "), "SEARCH calls USING INDEX "+c.index) {
			t.Errorf("%s: plan %q; want a search of %s", name, plan, c.index)
		}
	}
}
