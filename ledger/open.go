package ledger

import (
	"context"
	"fmt"
	"net/url"
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

// redactDSN hides every password in a DSN so it can be logged: the URL's
// userinfo password, a password (or sslpassword) query parameter, and a
// password=… pair of a keyword/value DSN.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && strings.Contains(dsn, "://") {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		for name := range q {
			if strings.Contains(strings.ToLower(name), "password") {
				q.Set(name, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(dsn, "://") {
		// Not a URL Go can parse: show only the scheme.
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://(unparseable DSN)"
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.Contains(strings.ToLower(k), "password") {
			fields[i] = k + "=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// RedactDSN is redactDSN for other packages' logs.
func RedactDSN(dsn string) string { return redactDSN(dsn) }
