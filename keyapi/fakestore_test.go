package keyapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keybrake/keybrake/ledger"
)

// fakeStore is an in-memory Ledger for the handler tests: a
// mutex-guarded map with offset cursors. It is not a production store and
// implements only what the key API uses.
type fakeStore struct {
	mu      sync.Mutex
	keys    map[string]*ledger.KeyUsage
	order   []string // key ids in creation order
	calls   []ledger.Call
	summary map[string][]ledger.SummaryRow

	// err, when set, is returned by every method.
	err error
	// createErrs are returned by the next CreateKey calls, one each.
	createErrs []error
	// getErr, when set, is returned by GetKey only.
	getErr error
	// auditErrAfter, when above 0, makes Audit fail after that many
	// pages.
	auditErrAfter int

	keyFilters     []ledger.KeyFilter
	auditFilters   []ledger.AuditFilter
	summaryFilters []ledger.SummaryFilter
	createCalls    int
}

var _ Ledger = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{keys: map[string]*ledger.KeyUsage{}, summary: map[string][]ledger.SummaryRow{}}
}

var errFakeUnsupported = errors.New("fake store: not supported")

func (s *fakeStore) CreateKey(_ context.Context, k ledger.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createCalls++
	if s.err != nil {
		return s.err
	}
	if len(s.createErrs) > 0 {
		err := s.createErrs[0]
		s.createErrs = s.createErrs[1:]
		return err
	}
	if _, ok := s.keys[k.ID]; ok {
		return ledger.ErrConflict
	}
	for _, u := range s.keys {
		if u.Hash == k.Hash {
			return ledger.ErrConflict
		}
	}
	k.AllowedEndpoints = slices.Clone(k.AllowedEndpoints)
	s.keys[k.ID] = &ledger.KeyUsage{Key: k}
	s.order = append(s.order, k.ID)
	return nil
}

func (s *fakeStore) GetKey(_ context.Context, id string, _ time.Time) (ledger.KeyUsage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return ledger.KeyUsage{}, s.err
	}
	if s.getErr != nil {
		return ledger.KeyUsage{}, s.getErr
	}
	u, ok := s.keys[id]
	if !ok {
		return ledger.KeyUsage{}, ledger.ErrNotFound
	}
	return *u, nil
}

func (s *fakeStore) ListKeys(_ context.Context, f ledger.KeyFilter) ([]ledger.KeyUsage, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyFilters = append(s.keyFilters, f)
	if s.err != nil {
		return nil, "", s.err
	}
	var all []ledger.KeyUsage
	for i := len(s.order) - 1; i >= 0; i-- { // newest first
		u := s.keys[s.order[i]]
		if (f.RunLabel == "" || u.RunLabel == f.RunLabel) &&
			(f.Vendor == "" || u.Vendor == f.Vendor) &&
			(f.Status == "" || u.Status(f.Now) == f.Status) {
			all = append(all, *u)
		}
	}
	page, next, err := paginate(all, f.Cursor, f.Limit)
	return page, next, err
}

func (s *fakeStore) RevokeKey(_ context.Context, id string, now time.Time) (ledger.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return ledger.Key{}, s.err
	}
	u, ok := s.keys[id]
	if !ok {
		return ledger.Key{}, ledger.ErrNotFound
	}
	if u.RevokedAt == nil {
		t := now
		u.RevokedAt = &t
	}
	return u.Key, nil
}

func (s *fakeStore) Audit(_ context.Context, f ledger.AuditFilter) ([]ledger.Call, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditFilters = append(s.auditFilters, f)
	if s.err != nil {
		return nil, "", s.err
	}
	if s.auditErrAfter > 0 && len(s.auditFilters) > s.auditErrAfter {
		return nil, "", ledger.ErrUnavailable
	}
	var all []ledger.Call
	for _, c := range s.calls { // oldest first
		if (f.RunLabel == "" || c.RunLabel == f.RunLabel) &&
			(f.KeyID == "" || c.KeyID == f.KeyID) &&
			(f.Vendor == "" || c.Vendor == f.Vendor) &&
			(f.Outcome == "" || c.Outcome == f.Outcome) &&
			(f.CostState == "" || c.CostState == f.CostState) &&
			(f.VendorTxnID == "" || c.VendorTxnID == f.VendorTxnID) &&
			(f.Since.IsZero() || !c.StartedAt.Before(f.Since)) &&
			(f.Until.IsZero() || c.StartedAt.Before(f.Until)) {
			all = append(all, c)
		}
	}
	return paginate(all, f.Cursor, f.Limit)
}

// Summary answers the rows stored under the filter's run label ("" for a
// day view) and records the filter.
func (s *fakeStore) Summary(_ context.Context, f ledger.SummaryFilter) ([]ledger.SummaryRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.summaryFilters = append(s.summaryFilters, f)
	if s.err != nil {
		return nil, s.err
	}
	return slices.Clone(s.summary[f.RunLabel]), nil
}

// paginate pages items with cursors "o<offset>".
func paginate[T any](items []T, cursor string, limit int) ([]T, string, error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, "", fmt.Errorf("fake store: limit %d out of range", limit)
	}
	off := 0
	if cursor != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(cursor, "o"))
		if err != nil || !strings.HasPrefix(cursor, "o") || n < 0 {
			return nil, "", fmt.Errorf("fake store: bad cursor %q", cursor)
		}
		off = min(n, len(items))
	}
	end := min(off+limit, len(items))
	next := ""
	if end < len(items) {
		next = "o" + strconv.Itoa(end)
	}
	return items[off:end], next, nil
}

// setUsage replaces a key's running totals.
func (s *fakeStore) setUsage(id string, f func(u *ledger.KeyUsage)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.keys[id])
}

func (s *fakeStore) key(id string) (ledger.KeyUsage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.keys[id]
	if !ok {
		return ledger.KeyUsage{}, false
	}
	return *u, true
}

func (s *fakeStore) numKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

func (s *fakeStore) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *fakeStore) lastKeyFilter() ledger.KeyFilter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyFilters[len(s.keyFilters)-1]
}

func (s *fakeStore) lastAuditFilter() ledger.AuditFilter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auditFilters[len(s.auditFilters)-1]
}

// The key API resolves on the real embedded ledger only (resolve_test.go).
func (s *fakeStore) Resolve(context.Context, string, ledger.Resolution) (ledger.Call, error) {
	return ledger.Call{}, errFakeUnsupported
}

// The fake has no stored tokens: every bearer token but the configured
// ones is unknown. The token and patch endpoints are tested on the real
// embedded ledger (tokens_test.go).
var errNotInFake = errors.New("not implemented by the fake store")

func (s *fakeStore) TokenByHash(context.Context, ledger.Hash) (ledger.Token, error) {
	if s.err != nil {
		return ledger.Token{}, s.err
	}
	return ledger.Token{}, ledger.ErrNotFound
}
func (s *fakeStore) CreateToken(context.Context, ledger.Token) error { return errNotInFake }
func (s *fakeStore) GetToken(context.Context, string, time.Time) (ledger.TokenUsage, error) {
	return ledger.TokenUsage{}, errNotInFake
}
func (s *fakeStore) ListTokens(context.Context, time.Time) ([]ledger.TokenUsage, error) {
	return nil, errNotInFake
}
func (s *fakeStore) RevokeToken(context.Context, string, time.Time) (ledger.Token, error) {
	return ledger.Token{}, errNotInFake
}
func (s *fakeStore) RevokeKeys(context.Context, ledger.RevokeFilter, time.Time) ([]string, error) {
	return nil, errNotInFake
}
func (s *fakeStore) PatchKey(context.Context, string, ledger.KeyPatch) (ledger.Key, error) {
	return ledger.Key{}, errNotInFake
}
