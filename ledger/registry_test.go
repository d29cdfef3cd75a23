package ledger_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)

// TestOpenDispatchesByRegisteredPrefix: Open knows the backends only by
// what they registered: a DSN reaches the backend of its prefix, and one no
// backend accepts is refused with the prefixes that are accepted, its
// password hidden.
func TestOpenDispatchesByRegisteredPrefix(t *testing.T) {
	ctx := context.Background()
	s, err := ledger.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), nil)
	if err != nil {
		t.Fatalf("Open(sqlite:…): %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// An unparseable postgresql:// DSN fails in the Postgres backend's own
	// parsing, before any connection is tried.
	if _, err := ledger.Open(ctx, "postgresql://kb@db/x?connect_timeout=zz", nil); err == nil ||
		!strings.Contains(err.Error(), "postgres ledger DSN") {
		t.Fatalf("Open(postgresql://…) = %v; want the postgres backend's parse error", err)
	}
	_, err = ledger.Open(ctx, "mysql://kb:s3cretpw@db/keybrake", nil)
	if err == nil {
		t.Fatal("Open(mysql://…) succeeded")
	}
	for _, want := range []string{"postgres://…", "postgresql://…", "sqlite:…"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not list %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the password", err)
	}
}

// TestRegisterBackendRefusesATakenPrefix: two backends claiming one prefix
// is a mistake of the program, refused when it starts.
func TestRegisterBackendRefusesATakenPrefix(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a second backend took the sqlite: prefix")
		}
	}()
	ledger.RegisterBackend(ledger.Backend{Name: "other", Prefixes: []string{"sqlite:"},
		Open: func(context.Context, string, *zap.Logger) (ledger.Store, error) { return nil, nil }})
}
