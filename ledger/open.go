package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Opener opens a backend from the part of the DSN after its scheme
// detection. Backends register themselves in init.
type Opener func(ctx context.Context, dsn string, logger *zap.Logger) (Store, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// RegisterBackend makes a backend available under a DSN scheme
// ("postgres", "sqlite").
func RegisterBackend(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[scheme] = open
}

// DefaultDSN is the embedded ledger in the working directory.
const DefaultDSN = "sqlite:keybrake.db"

// Open opens the ledger a DSN names: postgres://… or postgresql://… for
// Postgres, sqlite:PATH for the embedded ledger. Migrations are applied.
func Open(ctx context.Context, dsn string, logger *zap.Logger) (Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	scheme := ""
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		scheme = "postgres"
	case strings.HasPrefix(dsn, "sqlite:"):
		scheme = "sqlite"
	default:
		return nil, fmt.Errorf("unsupported ledger %q: want postgres://… or sqlite:PATH", redactDSN(dsn))
	}
	openersMu.RLock()
	open, ok := openers[scheme]
	openersMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("ledger backend %q is not built in", scheme)
	}
	return open(ctx, dsn, logger)
}

// redactDSN hides a password in a DSN so it can be logged.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":xxxxx" + dsn[at:]
	}
	return dsn
}

// RedactDSN is redactDSN for other packages' logs.
func RedactDSN(dsn string) string { return redactDSN(dsn) }
