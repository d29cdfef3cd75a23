package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestSQLiteHotPathPlans: the spend path's lookups by idempotency key
// search calls_by_idempotency, not the key's calls of the whole replay
// window, on an analysed ledger.
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
	cases := map[string]string{
		"original":  sqliteFindOriginalSQL,
		"first tag": sqliteFirstTagSQL,
	}
	for name, q := range cases {
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
		if !strings.Contains(strings.Join(plan, "; "), "USING INDEX calls_by_idempotency") {
			t.Errorf("%s: plan %q; want a search of calls_by_idempotency", name, plan)
		}
	}
}
