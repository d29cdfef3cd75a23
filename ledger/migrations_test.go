package ledger_test

import (
	"testing"
	"testing/fstest"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/keybrake/keybrake/ledger"
)

// TestLoadMigrations: steps come back in version order, whatever the order
// of the files; a file not named NNNN_name.sql and two files of one
// version are refused, for every backend alike.
func TestLoadMigrations(t *testing.T) {
	steps, err := ledger.LoadMigrations(fstest.MapFS{
		"m/0010_later.sql": {Data: []byte("SELECT 10")},
		"m/0002_next.sql":  {Data: []byte("SELECT 2")},
		"m/0001_init.sql":  {Data: []byte("SELECT 1")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	var versions []int
	for _, s := range steps {
		versions = append(versions, s.Version)
	}
	if len(steps) != 3 || versions[0] != 1 || versions[1] != 2 || versions[2] != 10 ||
		steps[2].Name != "0010_later.sql" || steps[2].SQL != "SELECT 10" {
		t.Fatalf("steps = %+v", steps)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no version": {"m/init.sql": {}},
		"version 0":  {"m/0000_init.sql": {}},
		"duplicate":  {"m/0001_a.sql": {}, "m/0001_b.sql": {}},
	} {
		if _, err := ledger.LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestPendingMigrations: the steps a schema lacks, in order, gaps
// included; a schema a newer build migrated is warned about, not refused.
func TestPendingMigrations(t *testing.T) {
	steps := []ledger.Migration{{Version: 1}, {Version: 2}, {Version: 3}}
	core, logs := observer.New(zap.WarnLevel)
	pending := ledger.PendingMigrations("test", steps, []int{1, 3}, zap.New(core))
	if len(pending) != 1 || pending[0].Version != 2 || logs.Len() != 0 {
		t.Fatalf("pending = %+v, %d warnings; want step 2, none", pending, logs.Len())
	}
	if pending := ledger.PendingMigrations("test", steps, []int{1, 2, 3, 4}, zap.New(core)); len(pending) != 0 {
		t.Fatalf("pending on a newer schema = %+v", pending)
	}
	if logs.FilterMessage("ledger schema is newer than this build").Len() != 1 {
		t.Fatalf("no warning for a newer schema: %v", logs.All())
	}
}
