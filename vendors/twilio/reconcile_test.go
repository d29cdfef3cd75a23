package twilio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// fakeStore is an in-memory UnpricedCalls.
type fakeStore struct {
	mu         sync.Mutex
	calls      map[string]*ledger.Call
	settled    chan string
	pendingErr error
}

var _ UnpricedCalls = (*fakeStore)(nil)

func newFakeStore(calls ...ledger.Call) *fakeStore {
	s := &fakeStore{calls: map[string]*ledger.Call{}, settled: make(chan string, 100)}
	for i := range calls {
		c := calls[i]
		s.calls[c.CallID] = &c
	}
	return s
}

func (s *fakeStore) PendingCalls(_ context.Context, vendor, state string, before time.Time, limit int) ([]ledger.Call, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pendingErr != nil {
		return nil, s.pendingErr
	}
	var out []ledger.Call
	for _, c := range s.calls {
		if c.Vendor == vendor && c.CostState == state && c.StartedAt.Before(before) {
			out = append(out, *c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *fakeStore) Settle(_ context.Context, id string, st ledger.Settlement) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[id]
	if !ok {
		return ledger.ErrNotFound
	}
	switch c.CostState {
	case ledger.CostReserved, ledger.CostUnknown, ledger.CostUnpriced:
	default:
		return nil
	}
	c.Cost, c.CostState = st.Cost, st.CostState
	if c.CostState == "" {
		c.CostState = ledger.CostSettled
	}
	c.FinishedAt = &st.Now
	s.settled <- id
	return nil
}

func (s *fakeStore) get(id string) ledger.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.calls[id]
}

// pricingTwilio serves GET …/Messages/{sid}.json and …/Calls/{sid}.json
// from a table of prices ("" for null, "404" for gone, "500" for failing).
type pricingTwilio struct {
	mu     sync.Mutex
	prices map[string]string
	paths  []string
	auths  []string
}

func (p *pricingTwilio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths = append(p.paths, r.URL.Path)
	p.auths = append(p.auths, r.Header.Get("Authorization"))
	base := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	sid := strings.TrimSuffix(base, ".json")
	price, ok := p.prices[sid]
	switch {
	case !ok || price == "404":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		fmt.Fprint(w, `{"code":20404,"message":"The requested resource was not found","status":404}`)
		return
	case price == "500":
		w.WriteHeader(500)
		return
	}
	pj := "null"
	if price != "" {
		pj = fmt.Sprintf("%q", price)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"sid":%q,"status":"delivered","price":%s,"price_unit":"USD"}`, sid, pj)
}

func (p *pricingTwilio) setPrice(sid, price string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prices[sid] = price
}

func unpriced(id, sid string, started time.Time, cost money.Micros) ledger.Call {
	return ledger.Call{CallID: id, KeyID: "vk_1", Vendor: Name, Method: "POST", StatusCode: 201,
		VendorTxnID: sid, CostState: ledger.CostUnpriced, Cost: cost, Reserved: cost, StartedAt: started}
}

func TestReconcilerRunOnce(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	store := newFakeStore(
		unpriced("c1", "SM00000000000000000000000000000001", t0, 8_300),
		unpriced("c2", "SM00000000000000000000000000000002", t0.Add(10*time.Second), 16_600),
		unpriced("c3", "CA00000000000000000000000000000003", t0.Add(20*time.Second), 1_000_000),
		unpriced("c4", "SM00000000000000000000000000000004", t0.Add(30*time.Second), 8_300),
		unpriced("c5", "", t0.Add(40*time.Second), 8_300),
		unpriced("c6", "SM00000000000000000000000000000006", t0.Add(50*time.Second), 8_300),
	)
	// A settled call and another vendor's unpriced call are left alone.
	other := unpriced("o1", "SM9", t0, 5)
	other.Vendor = "resend"
	store.calls["o1"] = &other
	done := unpriced("d1", "SM8", t0, 5)
	done.CostState = ledger.CostSettled
	store.calls["d1"] = &done

	tw := &pricingTwilio{prices: map[string]string{
		"SM00000000000000000000000000000001": "",         // not priced yet
		"SM00000000000000000000000000000002": "-0.01660", // priced: 2 segments
		"CA00000000000000000000000000000003": "-0.0140",  // a 1-minute call
		"SM00000000000000000000000000000004": "500",      // Twilio failing
		"SM00000000000000000000000000000006": "404",      // deleted
	}}
	srv := httptest.NewServer(tw)
	defer srv.Close()
	rc := &Reconciler{Store: store, BaseURL: srv.URL, AccountSID: realSID, AuthToken: realToken,
		Client: srv.Client(), Now: clock, MinAge: time.Minute, Batch: 10}

	// Too early: nothing is a minute old.
	now = t0.Add(30 * time.Second)
	if n, err := rc.RunOnce(context.Background()); n != 0 || err != nil {
		t.Fatalf("early run: %d, %v", n, err)
	}
	if len(tw.paths) != 0 {
		t.Fatalf("fetched too early: %v", tw.paths)
	}

	now = t0.Add(2 * time.Minute)
	n, err := rc.RunOnce(context.Background())
	// c2 and c3 priced; c5 (no sid) and c6 (404) given up at their
	// provisional cost; c4 failed; c1 waits.
	if n != 4 {
		t.Errorf("reconciled %d; want 4", n)
	}
	if err == nil || !strings.Contains(err.Error(), "c4") {
		t.Errorf("err = %v; want c4's failure", err)
	}
	want := map[string]struct {
		state string
		cost  money.Micros
	}{
		"c1": {ledger.CostUnpriced, 8_300},
		"c2": {ledger.CostSettled, 16_600},
		"c3": {ledger.CostSettled, 14_000},
		"c4": {ledger.CostUnpriced, 8_300},
		"c5": {ledger.CostSettled, 8_300},
		"c6": {ledger.CostSettled, 8_300},
		"o1": {ledger.CostUnpriced, 5},
		"d1": {ledger.CostSettled, 5},
	}
	for id, w := range want {
		if c := store.get(id); c.CostState != w.state || c.Cost != w.cost {
			t.Errorf("%s: %s %v; want %s %v", id, c.CostState, c.Cost, w.state, w.cost)
		}
	}
	for i, p := range tw.paths {
		if !strings.HasPrefix(p, "/2010-04-01/Accounts/"+realSID+"/") {
			t.Errorf("fetched %s", p)
		}
		if tw.auths[i] != basic(realSID, realToken) {
			t.Errorf("fetched with %q", tw.auths[i])
		}
	}
	if !contains(tw.paths, "/2010-04-01/Accounts/"+realSID+"/Calls/CA00000000000000000000000000000003.json") {
		t.Errorf("call not fetched from Calls: %v", tw.paths)
	}

	// Later: c1 priced now, c4 recovers.
	tw.setPrice("SM00000000000000000000000000000001", "-0.00830")
	tw.setPrice("SM00000000000000000000000000000004", "-0.0083")
	now = t0.Add(10 * time.Minute)
	if n, err := rc.RunOnce(context.Background()); n != 2 || err != nil {
		t.Fatalf("second run: %d, %v", n, err)
	}
	for _, id := range []string{"c1", "c4"} {
		if c := store.get(id); c.CostState != ledger.CostSettled || c.Cost != 8_300 {
			t.Errorf("%s: %+v", id, c)
		}
	}
}

func TestReconcilerGivesUpAndBatches(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	var calls []ledger.Call
	prices := map[string]string{}
	for i := 0; i < 5; i++ {
		sid := fmt.Sprintf("SM%032d", i)
		calls = append(calls, unpriced(fmt.Sprintf("c%d", i), sid, t0.Add(time.Duration(i)*time.Second), 8_300))
		prices[sid] = "" // never priced
	}
	store := newFakeStore(calls...)
	tw := &pricingTwilio{prices: prices}
	srv := httptest.NewServer(tw)
	defer srv.Close()
	rc := &Reconciler{Store: store, BaseURL: srv.URL, AccountSID: realSID, AuthToken: realToken,
		Now: func() time.Time { return now }, Batch: 2, GiveUpAfter: time.Hour}

	now = t0.Add(30 * time.Minute)
	if n, err := rc.RunOnce(context.Background()); n != 0 || err != nil {
		t.Fatalf("run before giving up: %d, %v", n, err)
	}
	if len(tw.paths) != 2 {
		t.Fatalf("batch of 2 fetched %d", len(tw.paths))
	}
	now = t0.Add(2 * time.Hour)
	if n, err := rc.RunOnce(context.Background()); n != 2 || err != nil {
		t.Fatalf("giving up: %d, %v", n, err)
	}
	if c := store.get("c0"); c.CostState != ledger.CostSettled || c.Cost != 8_300 {
		t.Fatalf("c0 = %+v", c)
	}
	if c := store.get("c4"); c.CostState != ledger.CostUnpriced {
		t.Fatalf("c4 beyond the batch = %+v", c)
	}

	store.pendingErr = ledger.ErrUnavailable
	if _, err := rc.RunOnce(context.Background()); !errors.Is(err, ledger.ErrUnavailable) {
		t.Fatalf("ledger down: %v", err)
	}
	if _, err := (&Reconciler{Store: store}).RunOnce(context.Background()); err == nil {
		t.Fatal("missing credentials accepted")
	}
}

func TestReconcilerRun(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	store := newFakeStore(unpriced("c1", "SM00000000000000000000000000000001", t0, 8_300))
	tw := &pricingTwilio{prices: map[string]string{"SM00000000000000000000000000000001": "-0.0083"}}
	srv := httptest.NewServer(tw)
	defer srv.Close()
	ticks := make(chan time.Time)
	rc := &Reconciler{Store: store, BaseURL: srv.URL, AccountSID: realSID, AuthToken: realToken,
		Now: func() time.Time { return t0.Add(5 * time.Minute) }, Ticks: ticks}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- rc.Run(ctx) }()

	ticks <- t0
	if id := <-store.settled; id != "c1" {
		t.Fatalf("settled %s", id)
	}
	if c := store.get("c1"); c.CostState != ledger.CostSettled || c.Cost != 8_300 {
		t.Fatalf("c1 = %+v", c)
	}
	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}

	// A closed Ticks channel ends Run too.
	closed := make(chan time.Time)
	close(closed)
	rc.Ticks = closed
	if err := rc.Run(context.Background()); err != nil {
		t.Fatalf("Run with closed ticks: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
