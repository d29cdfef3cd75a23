package caddymodule

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/ledger"
	// The backends a ledger DSN may name register themselves.
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)

// ledgers holds one open ledger per DSN across config reloads: a reload
// that keeps the DSN keeps the pool, the cache and the LISTEN connection.
var ledgers = caddy.NewUsagePool()

// ledgerHandle is a ledger shared by every config that names its DSN.
type ledgerHandle struct {
	dsn   string
	store ledger.Store
	keys  *ledger.KeyCache
	// approvals is where calls held for approval wait (nil for a ledger
	// that keeps none).
	approvals *gate.Approvals
	cancel    context.CancelFunc
	done      chan struct{}

	// log is where the store, the key watcher and the handle log: the
	// logger of the config whose settings apply (see users).
	log    *swappableLogger
	logger *zap.Logger

	mu sync.Mutex
	// users are the configs holding the ledger, in the order they
	// started. The last one's key_cache_ttl and logger apply: a reload
	// starts the new config before it stops the old one, and a reload that
	// fails gives the ledger back to the config still running.
	users []*ledgerUse
}

// ledgerUse is one config's hold on a pooled ledger, with its settings.
type ledgerUse struct {
	cacheTTL time.Duration
	logger   *zap.Logger
}

// openLedger loads the ledger for dsn from the pool, opening it if no
// running config has it yet, and applies this config's key cache TTL and
// logger to it. The ledgerUse is what release gives back.
func openLedger(ctx caddy.Context, dsn string, cacheTTL time.Duration, logger *zap.Logger) (*ledgerHandle, *ledgerUse, error) {
	v, _, err := ledgers.LoadOrNew(dsn, func() (caddy.Destructor, error) {
		log := newSwappableLogger(logger)
		pooledLogger := log.logger(logger)
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		store, err := ledger.Open(openCtx, dsn, pooledLogger)
		if err != nil {
			return nil, fmt.Errorf("opening ledger %s: %w", ledger.RedactDSN(dsn), err)
		}
		keys, err := ledger.NewKeyCache(store, 0, cacheTTL)
		if err != nil {
			_ = store.Close()
			return nil, err
		}
		// The watcher outlives this config (it belongs to the pooled
		// ledger), so it gets its own context, cancelled by Destruct.
		watchCtx, stop := context.WithCancel(context.Background())
		h := &ledgerHandle{dsn: dsn, store: store, keys: keys, cancel: stop, done: make(chan struct{}),
			log: log, logger: pooledLogger}
		var watchers sync.WaitGroup
		if w, ok := store.(ledger.KeyWatcher); ok {
			watchers.Add(1)
			go func() {
				defer watchers.Done()
				err := w.WatchKeys(watchCtx, keys.Invalidate)
				if err != nil && watchCtx.Err() == nil {
					pooledLogger.Error("watching key changes", zap.Error(err))
				}
			}()
		}
		if as, ok := store.(ledger.ApprovalStore); ok {
			h.approvals = gate.NewApprovals(as, nil, pooledLogger)
			watchers.Add(1)
			go func() {
				defer watchers.Done()
				err := h.approvals.Run(watchCtx)
				if err != nil && watchCtx.Err() == nil {
					pooledLogger.Error("watching approval decisions", zap.Error(err))
				}
			}()
		}
		go func() {
			watchers.Wait()
			close(h.done)
		}()
		logger.Info("ledger opened", zap.String("ledger", ledger.RedactDSN(dsn)))
		return h, nil
	})
	if err != nil {
		return nil, nil, err
	}
	h := v.(*ledgerHandle)
	use := &ledgerUse{cacheTTL: cacheTTL, logger: logger}
	h.mu.Lock()
	h.users = append(h.users, use)
	h.applyLocked()
	h.mu.Unlock()
	return h, use, nil
}

// applyLocked applies the settings of the last config holding the ledger.
func (h *ledgerHandle) applyLocked() {
	if len(h.users) == 0 {
		return
	}
	latest := h.users[len(h.users)-1]
	h.keys.SetTTL(latest.cacheTTL)
	h.log.set(latest.logger)
}

// release drops this config's hold; the last one closes the ledger.
func (h *ledgerHandle) release(use *ledgerUse) error {
	h.mu.Lock()
	h.users = slices.DeleteFunc(h.users, func(u *ledgerUse) bool { return u == use })
	h.applyLocked()
	h.mu.Unlock()
	_, err := ledgers.Delete(h.dsn)
	return err
}

// Destruct closes the ledger when no config uses it any more.
func (h *ledgerHandle) Destruct() error {
	h.cancel()
	<-h.done
	h.keys.Close()
	err := h.store.Close()
	h.logger.Info("ledger closed", zap.String("ledger", ledger.RedactDSN(h.dsn)))
	return err
}

// Interface guard.
var _ caddy.Destructor = (*ledgerHandle)(nil)
