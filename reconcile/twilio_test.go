package reconcile_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keybrake/keybrake/integration/simvendor"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors/twilio"
)

const (
	twSID   = "AC00000000000000000000000000000009"
	twToken = "twilioReconcileToken000000000000"
	msgPath = "/2010-04-01/Accounts/" + twSID + "/Messages.json"
)

// TestReconcileTwilioByListing: two messages were sent to one number; one
// is counted by the call that got its answer. The call whose answer was
// lost is the other one; a lost call to a number Twilio never messaged is
// released; two lost calls to one number with two uncounted messages are
// left for an operator.
func TestReconcileTwilioByListing(t *testing.T) {
	ctx := context.Background()
	store, err := ledger.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC().Truncate(time.Second)
	sim := simvendor.New(simvendor.Config{TwilioAccountSID: twSID, TwilioAuthToken: twToken})
	srv := httptest.NewServer(sim.Twilio())
	defer srv.Close()
	capUSD := 10 * money.PerDollar
	key := ledger.Key{ID: "vkTwilioRecon000000001", Hash: ledger.HashSecret("t"), Vendor: "twilio", TotalCap: &capUSD,
		AllowedEndpoints: []string{"POST " + msgPath}, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour)}
	if err := store.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	send := func(to string) {
		req, _ := http.NewRequest("POST", srv.URL+msgPath, strings.NewReader(url.Values{"To": {to}, "From": {"+15550000000"}, "Body": {"hi"}}.Encode()))
		req.SetBasicAuth(twSID, twToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("sending: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	n := 0
	call := func(to string) string {
		n++
		id := "clTwilioRecon0000000" + string(rune('A'+n))
		if _, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: id, KeyID: key.ID, Vendor: "twilio", Method: "POST",
			Path: msgPath + "?" + url.Values{"to": {to}}.Encode(), Endpoint: "POST " + msgPath, Estimate: 8300, Now: now}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	unknown := func(id string) {
		if err := store.MarkUnknown(ctx, id, ledger.Settlement{StatusCode: 502, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	send("+15550001111")
	send("+15550001111")
	send("+15550003333")
	send("+15550003333")
	// The first message to 1111 is a call that got its answer.
	answered := call("+15550001111")
	list := sim.Events()
	if err := store.Settle(ctx, answered, ledger.Settlement{StatusCode: 201, Cost: 8300, VendorTxnID: list[0].Object, Now: now}); err != nil {
		t.Fatal(err)
	}
	lost := call("+15550001111")
	unknown(lost)
	never := call("+15550002222")
	unknown(never)
	twinA, twinB := call("+15550003333"), call("+15550003333")
	unknown(twinA)
	unknown(twinB)

	rc := &reconcile.Reconciler{Store: store, Pace: time.Microsecond, NotFoundAfter: time.Minute,
		Finders: map[string]reconcile.Finder{"twilio": &twilio.Reconciler{BaseURL: srv.URL, AccountSID: twSID, AuthToken: twToken}},
		Now:     func() time.Time { return now.Add(2 * time.Minute) }}
	res, err := rc.RunOnce(ctx)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if res.Settled != 1 || res.Released != 1 || res.Undecided != 2 {
		t.Fatalf("run = %+v", res)
	}
	calls, _, _ := store.Audit(ctx, ledger.AuditFilter{KeyID: key.ID, Limit: 100})
	got := map[string]ledger.Call{}
	for _, c := range calls {
		got[c.CallID] = c
	}
	if c := got[lost]; c.CostState != ledger.CostSettled || c.VendorTxnID != list[1].Object || c.Cost != 8300 {
		t.Fatalf("lost call = %+v; want the second message %s", c, list[1].Object)
	}
	if c := got[never]; c.CostState != ledger.CostReleased {
		t.Fatalf("call to a number never messaged = %+v", c)
	}
	if got[twinA].CostState != ledger.CostUnknown || got[twinB].CostState != ledger.CostUnknown {
		t.Fatalf("ambiguous calls were resolved: %+v / %+v", got[twinA], got[twinB])
	}
}
