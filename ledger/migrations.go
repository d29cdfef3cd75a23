package ledger

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Migration is one embedded schema step of a backend, from a file named
// NNNN_name.sql. A released file is never edited: a change is a new file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads a backend's embedded steps from dir, sorted by
// version, refusing a malformed name or a duplicated version.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations %s: %w", dir, err)
	}
	var steps []Migration
	seen := map[int]string{}
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s/%s: want NNNN_name.sql", dir, e.Name())
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, e.Name(), version)
		}
		seen[version] = e.Name()
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migration %s/%s: %w", dir, e.Name(), err)
		}
		steps = append(steps, Migration{Version: version, Name: e.Name(), SQL: string(body)})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].Version < steps[j].Version })
	return steps, nil
}

// PendingMigrations returns the steps of steps whose version is not in
// applied, in order. A schema newer than every step (a newer Keybrake
// migrated it) is logged and kept: steps only add, so this build keeps
// working; the warning is there in case it does not.
func PendingMigrations(backend string, steps []Migration, applied []int, logger *zap.Logger) []Migration {
	have := make(map[int]bool, len(applied))
	newest := 0
	for _, v := range applied {
		have[v] = true
		newest = max(newest, v)
	}
	if len(steps) > 0 && newest > steps[len(steps)-1].Version {
		logger.Warn("ledger schema is newer than this build",
			zap.String("backend", backend),
			zap.Int("schema_version", newest),
			zap.Int("build_version", steps[len(steps)-1].Version))
	}
	var pending []Migration
	for _, m := range steps {
		if !have[m.Version] {
			pending = append(pending, m)
		}
	}
	return pending
}
