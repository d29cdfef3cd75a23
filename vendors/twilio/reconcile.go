package twilio

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/internal/periodic"
	"github.com/keybrake/keybrake/ledger"
)

// Reconciler defaults.
const (
	DefaultReconcileBaseURL     = "https://api.twilio.com"
	DefaultReconcileMinAge      = 2 * time.Minute
	DefaultReconcileInterval    = time.Minute
	DefaultReconcileBatch       = 100
	DefaultReconcileGiveUpAfter = 72 * time.Hour
)

// UnpricedCalls is the part of the ledger a Reconciler uses: it finds the
// calls settled at a provisional price and settles them at the real one.
// A ledger.Store is one.
type UnpricedCalls interface {
	PendingCalls(ctx context.Context, vendor, costState string, startedBefore time.Time, limit int) ([]ledger.Call, error)
	Settle(ctx context.Context, callID string, s ledger.Settlement) error
}

// Reconciler replaces the provisional cost of Twilio calls settled as
// unpriced (a message or call whose price was null when it was created)
// with the real price, fetched from Twilio with the real credentials once
// Twilio has priced it.
//
// A call whose price never comes (the message was deleted: 404; or it is
// still null GiveUpAfter after the call) is settled at its provisional cost,
// so it stops being fetched; a warning is logged. Several nodes may run a
// Reconciler on one ledger: a call already settled is left alone by the
// ledger.
type Reconciler struct {
	// Store is the ledger. Required.
	Store UnpricedCalls
	// Vendor is the vendor name of the calls to reconcile. Default "twilio".
	Vendor string
	// BaseURL is Twilio's API. Default https://api.twilio.com.
	BaseURL string
	// AccountSID and AuthToken are the real credentials. Required.
	AccountSID, AuthToken string
	// APIKey, when set, is sent as the Basic user instead of AccountSID
	// (with AuthToken as the API key's secret).
	APIKey string
	// Client fetches from Twilio. Default: a client with a 30s timeout.
	Client *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MinAge is how old an unpriced call must be before it is fetched.
	// Default 2 minutes.
	MinAge time.Duration
	// Interval is the time between runs of Run. Default 1 minute.
	Interval time.Duration
	// Batch bounds how many calls one run fetches. Default 100.
	Batch int
	// GiveUpAfter is how long after a call started its price may still be
	// null before its provisional cost is taken as final. Default 72 hours.
	GiveUpAfter time.Duration
	// Logger logs what the reconciler does. Default: none.
	Logger *zap.Logger
	// Ticks, when set, drives Run instead of a ticker of Interval (tests
	// use it with an injected Now).
	Ticks <-chan time.Time
}

func (rc *Reconciler) now() time.Time {
	if rc.Now != nil {
		return rc.Now()
	}
	return time.Now()
}

func (rc *Reconciler) log() *zap.Logger {
	if rc.Logger != nil {
		return rc.Logger
	}
	return zap.NewNop()
}

func (rc *Reconciler) vendor() string {
	if rc.Vendor != "" {
		return rc.Vendor
	}
	return Name
}

// RunOnce reconciles up to Batch unpriced calls older than MinAge, oldest
// first, and returns how many it settled (at their real price, or at their
// provisional cost when giving up). Errors fetching one call do not stop the
// others; they are returned joined, and the call is tried again next run.
func (rc *Reconciler) RunOnce(ctx context.Context) (reconciled int, err error) {
	if rc.Store == nil || rc.AccountSID == "" || rc.AuthToken == "" {
		return 0, errors.New("twilio reconcile: store, account SID and auth token are required")
	}
	now := rc.now()
	batch := rc.Batch
	if batch <= 0 {
		batch = DefaultReconcileBatch
	}
	calls, err := rc.Store.PendingCalls(ctx, rc.vendor(), ledger.CostUnpriced, now.Add(-cmp.Or(max(rc.MinAge, 0), DefaultReconcileMinAge)), batch)
	if err != nil {
		return 0, fmt.Errorf("twilio reconcile: listing unpriced calls: %w", err)
	}
	var errs []error
	for _, c := range calls {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		done, err := rc.reconcile(ctx, c, now)
		if err != nil {
			rc.log().Warn("reconciling Twilio price", zap.String("call_id", c.CallID),
				zap.String("vendor_txn_id", c.VendorTxnID), zap.Error(err))
			errs = append(errs, fmt.Errorf("call %s: %w", c.CallID, err))
			continue
		}
		if done {
			reconciled++
		}
	}
	return reconciled, errors.Join(errs...)
}

// Run runs RunOnce every Interval (or on every value of Ticks) until ctx is
// done, logging each run's outcome. It returns ctx's error, or nil when
// Ticks is closed.
func (rc *Reconciler) Run(ctx context.Context) error {
	return periodic.Run(ctx, rc.Ticks, cmp.Or(max(rc.Interval, 0), DefaultReconcileInterval), func(ctx context.Context) {
		n, err := rc.RunOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			rc.log().Warn("Twilio reconciliation run", zap.Int("reconciled", n), zap.Error(err))
		case n > 0:
			rc.log().Info("Twilio reconciliation run", zap.Int("reconciled", n))
		}
	})
}

// resourcePath is the API path of the message or call a sid names.
func resourcePath(sid string) (string, bool) {
	if txnID(sid) == "" {
		return "", false
	}
	switch sid[:2] {
	case "SM", "MM":
		return "Messages/" + url.PathEscape(sid) + ".json", true
	case "CA":
		return "Calls/" + url.PathEscape(sid) + ".json", true
	}
	return "", false
}

// reconcile settles one call if its price is known (or never will be).
func (rc *Reconciler) reconcile(ctx context.Context, c ledger.Call, now time.Time) (bool, error) {
	rel, ok := resourcePath(c.VendorTxnID)
	if !ok {
		return rc.giveUp(ctx, c, now, "no Twilio sid to fetch the price with")
	}
	status, body, err := rc.get(ctx, rel, 1<<20)
	if err != nil {
		return false, fmt.Errorf("fetching %s: %w", c.VendorTxnID, err)
	}
	switch {
	case status == http.StatusNotFound:
		return rc.giveUp(ctx, c, now, "Twilio no longer has the resource")
	case status != http.StatusOK:
		return false, fmt.Errorf("fetching %s: Twilio answered %d", c.VendorTxnID, status)
	}
	var res resource
	if err := json.Unmarshal(body, &res); err != nil {
		return false, fmt.Errorf("fetching %s: unreadable answer: %w", c.VendorTxnID, err)
	}
	cost, ok := res.price()
	if !ok {
		if now.Sub(c.StartedAt) >= cmp.Or(max(rc.GiveUpAfter, 0), DefaultReconcileGiveUpAfter) {
			return rc.giveUp(ctx, c, now, "Twilio has not priced it in time")
		}
		return false, nil
	}
	err = rc.Store.Settle(ctx, c.CallID, ledger.Settlement{
		StatusCode:  c.StatusCode,
		Cost:        cost,
		VendorTxnID: c.VendorTxnID,
		CostState:   ledger.CostSettled,
		Now:         now,
	})
	if err != nil {
		return false, fmt.Errorf("settling: %w", err)
	}
	rc.log().Info("Twilio price reconciled", zap.String("call_id", c.CallID),
		zap.String("vendor_txn_id", c.VendorTxnID), zap.String("provisional_usd", c.Cost.String()),
		zap.String("cost_usd", cost.String()))
	return true, nil
}

// giveUp settles a call at its provisional cost: its price will not come.
func (rc *Reconciler) giveUp(ctx context.Context, c ledger.Call, now time.Time, why string) (bool, error) {
	err := rc.Store.Settle(ctx, c.CallID, ledger.Settlement{
		StatusCode:  c.StatusCode,
		Cost:        c.Cost,
		VendorTxnID: c.VendorTxnID,
		CostState:   ledger.CostSettled,
		Now:         now,
	})
	if err != nil {
		return false, fmt.Errorf("settling at the provisional cost: %w", err)
	}
	rc.log().Warn("Twilio price not available; provisional cost kept as final",
		zap.String("call_id", c.CallID), zap.String("vendor_txn_id", c.VendorTxnID),
		zap.String("cost_usd", c.Cost.String()), zap.String("reason", why))
	return true, nil
}
