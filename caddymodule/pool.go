package caddymodule

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)

// ledgers holds one open ledger per DSN across config reloads: a reload
// that keeps the DSN keeps the pool, the cache and the LISTEN connection.
var ledgers = caddy.NewUsagePool()

// ledgerHandle is a ledger shared by every config that names its DSN.
type ledgerHandle struct {
	dsn    string
	store  ledger.Store
	keys   *ledger.KeyCache
	cancel context.CancelFunc
	done   chan struct{}
}

// openLedger loads the ledger for dsn from the pool, opening it if no
// running config has it yet.
func openLedger(ctx caddy.Context, dsn string, cacheTTL time.Duration, logger *zap.Logger) (*ledgerHandle, error) {
	v, _, err := ledgers.LoadOrNew(dsn, func() (caddy.Destructor, error) {
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		store, err := ledger.Open(openCtx, dsn, logger)
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
		h := &ledgerHandle{dsn: dsn, store: store, keys: keys, cancel: stop, done: make(chan struct{})}
		if w, ok := store.(ledger.KeyWatcher); ok {
			go func() {
				defer close(h.done)
				err := w.WatchKeys(watchCtx, keys.Invalidate)
				if err != nil && watchCtx.Err() == nil {
					logger.Error("watching key changes", zap.Error(err))
				}
			}()
		} else {
			close(h.done)
		}
		logger.Info("ledger opened", zap.String("ledger", ledger.RedactDSN(dsn)))
		return h, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*ledgerHandle), nil
}

// release drops this config's hold; the last one closes the ledger.
func (h *ledgerHandle) release() error {
	_, err := ledgers.Delete(h.dsn)
	return err
}

// Destruct closes the ledger when no config uses it any more.
func (h *ledgerHandle) Destruct() error {
	h.cancel()
	<-h.done
	h.keys.Close()
	return h.store.Close()
}

// Interface guard.
var _ caddy.Destructor = (*ledgerHandle)(nil)
