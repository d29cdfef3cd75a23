package ledger

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Opener opens the ledger a DSN names (the whole DSN, prefix included)
// and applies pending migrations.
type Opener func(ctx context.Context, dsn string, logger *zap.Logger) (Store, error)

// Backend is a ledger implementation. Each backend package registers
// itself from its init, so a binary has the backends it imports and Open
// knows no backend by name.
type Backend struct {
	// Name names the backend in errors ("postgres", "sqlite").
	Name string
	// Prefixes are the DSN prefixes the backend accepts ("postgres://",
	// "sqlite:"). A DSN goes to the backend of its longest matching prefix.
	Prefixes []string
	// Open opens a DSN that starts with one of Prefixes.
	Open Opener
}

var (
	backendsMu sync.RWMutex
	// backends by DSN prefix.
	backends = map[string]Backend{}
)

// RegisterBackend makes b available to Open. It panics, like
// caddy.RegisterModule, on a backend without a name, prefix or opener, and
// on a prefix another backend has: both are mistakes of the program, found
// when it starts.
func RegisterBackend(b Backend) {
	if b.Name == "" || len(b.Prefixes) == 0 || b.Open == nil {
		panic(fmt.Sprintf("ledger backend %q: name, prefixes and opener are required", b.Name))
	}
	backendsMu.Lock()
	defer backendsMu.Unlock()
	for _, p := range b.Prefixes {
		if other, dup := backends[p]; dup || p == "" {
			panic(fmt.Sprintf("ledger backend %q: DSN prefix %q already taken by %q", b.Name, p, other.Name))
		}
	}
	for _, p := range b.Prefixes {
		backends[p] = b
	}
}

// backendFor finds the backend whose longest prefix starts dsn.
func backendFor(dsn string) (Backend, bool) {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	var found Backend
	longest := -1
	for p, b := range backends {
		if strings.HasPrefix(dsn, p) && len(p) > longest {
			found, longest = b, len(p)
		}
	}
	return found, longest >= 0
}

// acceptedPrefixes lists every registered DSN prefix, for errors.
func acceptedPrefixes() []string {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	prefixes := make([]string, 0, len(backends))
	for p := range backends {
		prefixes = append(prefixes, p+"…")
	}
	sort.Strings(prefixes)
	return prefixes
}

// DefaultDSN is the embedded ledger in the working directory.
const DefaultDSN = "sqlite:keybrake.db"

// Open opens the ledger a DSN names with the registered backend that
// accepts it (ledger/postgres: postgres://… or postgresql://…;
// ledger/sqlite: sqlite:PATH). Migrations are applied.
func Open(ctx context.Context, dsn string, logger *zap.Logger) (Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	b, ok := backendFor(dsn)
	if !ok {
		accepted := acceptedPrefixes()
		if len(accepted) == 0 {
			return nil, fmt.Errorf("unsupported ledger %q: no ledger backend is built in", redactDSN(dsn))
		}
		return nil, fmt.Errorf("unsupported ledger %q: want %s", redactDSN(dsn), strings.Join(accepted, " or "))
	}
	return b.Open(ctx, dsn, logger)
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
