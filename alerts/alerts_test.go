package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
	"github.com/keybrake/keybrake/money"
)

var t0 = time.Date(2031, time.May, 17, 9, 30, 0, 0, time.UTC)

func openStore(t *testing.T) ledger.Store {
	t.Helper()
	s, err := ledger.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func usd(s string) money.Micros {
	m, err := money.ParseUSD(s)
	if err != nil {
		panic(err)
	}
	return m
}

// receiver is a webhook endpoint that checks every signature and keeps the
// bodies it accepted; fail makes it answer 503.
type receiver struct {
	t      *testing.T
	secret string
	now    func() time.Time
	mu     sync.Mutex
	fail   bool
	got    []map[string]any
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := Verify(rc.secret, r.Header.Get(HeaderSignature), body, rc.now(), 5*time.Minute); err != nil {
		rc.bad++
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if rc.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		rc.t.Errorf("body %s: %v", body, err)
	}
	rc.got = append(rc.got, m)
}

func (rc *receiver) types() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, m := range rc.got {
		if typ, ok := m["type"].(string); ok {
			out = append(out, typ)
		} else {
			out = append(out, "text:"+m["text"].(string))
		}
	}
	return out
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"evt1"}`)
	h := Sign("whsec", t0, body)
	prefix := "t=" + strconv.FormatInt(t0.Unix(), 10) + ",v1="
	if !strings.HasPrefix(h, prefix) || len(h) != len(prefix)+64 {
		t.Fatalf("Sign = %q", h)
	}
	if err := Verify("whsec", h, body, t0.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("Verify of a fresh signature: %v", err)
	}
	for name, tc := range map[string]struct {
		secret, header string
		body           []byte
		now            time.Time
	}{
		"other secret": {"other", h, body, t0},
		"other body":   {"whsec", h, []byte(`{"id":"evt2"}`), t0},
		"too old":      {"whsec", h, body, t0.Add(10 * time.Minute)},
		"no v1":        {"whsec", strings.TrimSuffix(prefix, ",v1="), body, t0},
		"no t":         {"whsec", strings.SplitN(h, ",", 2)[1], body, t0},
	} {
		if err := Verify(tc.secret, tc.header, tc.body, tc.now, 5*time.Minute); err == nil {
			t.Errorf("%s: Verify accepted it", name)
		}
	}
}

func TestWebhookValidate(t *testing.T) {
	w := Webhook{Name: "ops", URL: "https://hooks.example.com/k", Secret: "s", Thresholds: []int{80, 50, 80}}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	if w.Format != FormatKeybrake || len(w.Thresholds) != 2 || w.Thresholds[0] != 50 {
		t.Errorf("defaults: %+v", w)
	}
	for name, bad := range map[string]Webhook{
		"no secret":  {Name: "a", URL: "https://x.example"},
		"bad url":    {Name: "a", URL: "ftp://x", Secret: "s"},
		"threshold":  {Name: "a", URL: "https://x.example", Secret: "s", Thresholds: []int{0}},
		"over 100":   {Name: "a", URL: "https://x.example", Secret: "s", Thresholds: []int{101}},
		"format":     {Name: "a", URL: "https://x.example", Secret: "s", Format: "teams"},
		"event type": {Name: "a", URL: "https://x.example", Secret: "s", Events: []string{"key.spent"}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, bad)
		}
	}
}

// clock is a test's clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestThresholdsOncePerCrossing spends a $10 key in $1.50 steps: 50%, 80%
// and 100% are each sent once, cap_hit once, revoked once, and two
// webhooks each get their own copy.
func TestThresholdsOncePerCrossing(t *testing.T) {
	store := openStore(t)
	clk := &clock{t: t0}
	rc := &receiver{t: t, secret: "whsec_a", now: clk.Now}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	slack := &receiver{t: t, secret: "whsec_b", now: clk.Now}
	slackSrv := httptest.NewServer(slack)
	defer slackSrv.Close()
	hooks := []Webhook{
		{Name: "ops", URL: srv.URL, Secret: "whsec_a"},
		{Name: "chat", URL: slackSrv.URL, Secret: "whsec_b", Format: FormatSlack, Events: []string{EventKeyCapHit}},
	}
	for i := range hooks {
		if err := hooks[i].Validate(); err != nil {
			t.Fatal(err)
		}
	}
	ob := store.(ledger.Outbox)
	a := &Alerter{Outbox: ob, Keys: store, Webhooks: hooks}
	ctx := context.Background()
	key := ledger.Key{ID: "vkA1", Hash: ledger.HashSecret("s1"), Vendor: "stripe", TotalCap: ptr(usd("10")),
		AllowedEndpoints: []string{"POST /v1/charges"}, RunLabel: "run-1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := store.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	spend := func(i int, amount string) ledger.ReserveResult {
		clk.Add(time.Second)
		res, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: "cl" + string(rune('A'+i)), KeyID: key.ID, Vendor: "stripe",
			Method: "POST", Path: "/v1/charges", Endpoint: "POST /v1/charges", Estimate: usd(amount), Now: clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed() {
			if err := store.Settle(ctx, "cl"+string(rune('A'+i)), ledger.Settlement{StatusCode: 200, Cost: usd(amount), Now: clk.Now()}); err != nil {
				t.Fatal(err)
			}
			if a.MayCross(&key, res.Remaining) {
				a.KeySpent(ctx, key.ID, clk.Now())
			}
		} else {
			a.CapHit(ctx, &key, "cl"+string(rune('A'+i)), "POST /v1/charges", res.Remaining, clk.Now())
		}
		return res
	}
	// $1.50 ×6 = $9 (90%), then $1 = $10 (100%), then two refused.
	for i := range 6 {
		spend(i, "1.50")
	}
	spend(6, "1")
	if res := spend(7, "1"); res.Outcome != ledger.OutcomeCapHit {
		t.Fatalf("8th call: %s, want a cap hit", res.Outcome)
	}
	spend(8, "1")
	// A second alerter (another node) sees the same crossings: nothing new.
	other := &Alerter{Outbox: ob, Keys: store, Webhooks: hooks}
	other.KeySpent(ctx, key.ID, clk.Now())
	other.CapHit(ctx, &key, "clZ", "POST /v1/charges", 0, clk.Now())
	// A PATCH tells the revocation hook too: a key still active is no
	// revocation, and must not use up the one key.revoked the key gets.
	a.RevokedID(ctx, key.ID, clk.Now())
	clk.Add(time.Second)
	revoked, err := store.RevokeKey(ctx, key.ID, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	a.Revoked(ctx, revoked, clk.Now())
	a.RevokedID(ctx, key.ID, clk.Now())

	s := &Sender{Outbox: ob, Webhooks: hooks, Now: clk.Now}
	if d, f, err := s.RunOnce(ctx); err != nil || f != 0 || d != 6 {
		t.Fatalf("RunOnce = %d delivered, %d failed, %v; want 6, 0", d, f, err)
	}
	want := "[key.threshold key.threshold key.threshold key.cap_hit key.revoked]"
	if got := rc.types(); fmtList(got) != want {
		t.Errorf("ops got %v, want %s", got, want)
	}
	if at := rc.got[len(rc.got)-1]["data"].(map[string]any)["revoked_at"]; at != revoked.RevokedAt.UTC().Format(time.RFC3339Nano) {
		t.Errorf("key.revoked at %v; want the revocation's %v", at, revoked.RevokedAt)
	}
	var pcts []any
	for _, m := range rc.got[:3] {
		pcts = append(pcts, m["data"].(map[string]any)["threshold_percent"])
	}
	if fmtList(pcts) != "[50 80 100]" {
		t.Errorf("thresholds sent %v, want [50 80 100]", pcts)
	}
	d := rc.got[0]["data"].(map[string]any)
	if d["key_id"] != "vkA1" || d["agent_run_label"] != "run-1" || d["cap"] != "total" || d["cap_usd"] != 10.0 || d["spent_usd"] != 6.0 {
		t.Errorf("50%% event data %v", d)
	}
	if got := slack.types(); len(got) != 1 || !strings.Contains(got[0], "run run-1, key vkA1 (stripe) hit its cap") {
		t.Errorf("slack got %v, want one cap_hit text", got)
	}
	if rc.bad+slack.bad != 0 {
		t.Errorf("%d deliveries with a bad signature", rc.bad+slack.bad)
	}
	if n, _ := ob.PendingEvents(ctx); n != 0 {
		t.Errorf("%d events still pending", n)
	}
}

// TestDailyThresholdPerDay: a daily cap's thresholds cross again on the
// next UTC day.
func TestDailyThresholdPerDay(t *testing.T) {
	store := openStore(t)
	ob := store.(ledger.Outbox)
	hooks := []Webhook{{Name: "ops", URL: "http://127.0.0.1:1/", Secret: "s", Thresholds: []int{50}}}
	a := &Alerter{Outbox: ob, Keys: store, Webhooks: hooks}
	ctx := context.Background()
	key := ledger.Key{ID: "vkD1", Hash: ledger.HashSecret("s1"), Vendor: "stripe", DailyCap: ptr(usd("2")),
		AllowedEndpoints: []string{"POST /v1/charges"}, CreatedAt: t0, ExpiresAt: t0.Add(48 * time.Hour)}
	if err := store.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{t0, t0.Add(time.Minute), t0.Add(24 * time.Hour)} {
		id := "clD" + string(rune('A'+i))
		if _, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: id, KeyID: key.ID, Vendor: "stripe", Method: "POST",
			Path: "/v1/charges", Endpoint: "POST /v1/charges", Estimate: usd("1"), Now: at}); err != nil {
			t.Fatal(err)
		}
		if err := store.Settle(ctx, id, ledger.Settlement{StatusCode: 200, Cost: usd("1"), Now: at}); err != nil {
			t.Fatal(err)
		}
		a.KeySpent(ctx, key.ID, at)
	}
	events, err := ob.ClaimEvents(ctx, t0.Add(25*time.Hour), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range events {
		keys = append(keys, e.DedupeKey)
	}
	want := "[key.threshold:vkD1:daily:2031-05-17:50 key.threshold:vkD1:daily:2031-05-18:50]"
	if fmtList(keys) != want {
		t.Errorf("events %v, want %s", keys, want)
	}
}

// TestSenderRetriesWithBackoff: a receiver that is down gets the event
// again after each backoff, doubling, and the event is delivered once the
// receiver is back; one that stays down past GiveUpAfter is given up.
func TestSenderRetriesWithBackoff(t *testing.T) {
	store := openStore(t)
	ob := store.(ledger.Outbox)
	clk := &clock{t: t0}
	rc := &receiver{t: t, secret: "s", now: clk.Now, fail: true}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	hooks := []Webhook{{Name: "ops", URL: srv.URL, Secret: "s"}}
	_ = hooks[0].Validate()
	a := &Alerter{Outbox: ob, Keys: store, Webhooks: hooks}
	ctx := context.Background()
	a.CallUnknown(ctx, CallUnknownData{CallID: "clU1", KeyID: "vk1", Vendor: "stripe", ReservedUSD: usd("5")}, clk.Now())
	s := &Sender{Outbox: ob, Webhooks: hooks, Now: clk.Now, MinBackoff: 10 * time.Second, MaxBackoff: 40 * time.Second, GiveUpAfter: 2 * time.Minute}
	run := func() (int, int) {
		d, f, err := s.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d, f
	}
	if _, f := run(); f != 1 {
		t.Fatal("first attempt did not fail")
	}
	// Waits of 10s, 20s, 40s, 40s: nothing is due a moment before each.
	for _, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		clk.Add(wait - time.Second)
		if d, f := run(); d+f != 0 {
			t.Fatalf("an attempt %s before its backoff of %s ended", time.Second, wait)
		}
		clk.Add(time.Second)
		if _, f := run(); f != 1 {
			t.Fatalf("no attempt after a backoff of %s", wait)
		}
	}
	rc.mu.Lock()
	rc.fail = false
	rc.mu.Unlock()
	clk.Add(40 * time.Second)
	if d, _ := run(); d != 1 {
		t.Fatal("not delivered once the receiver was back")
	}
	if got := rc.types(); fmtList(got) != "[call.unknown]" {
		t.Errorf("receiver got %v", got)
	}

	// Given up: the receiver is down past GiveUpAfter.
	rc.mu.Lock()
	rc.fail = true
	rc.mu.Unlock()
	a.CallUnknown(ctx, CallUnknownData{CallID: "clU2", KeyID: "vk1", Vendor: "stripe"}, clk.Now())
	for range 10 {
		run()
		clk.Add(40 * time.Second)
	}
	if n, _ := ob.PendingEvents(ctx); n != 0 {
		t.Errorf("%d events pending after GiveUpAfter; want it given up", n)
	}
}

// TestSenderRunStops: Run delivers what is due and returns when its
// context is done.
func TestSenderRunStops(t *testing.T) {
	store := openStore(t)
	ob := store.(ledger.Outbox)
	delivered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delivered <- struct{}{}
	}))
	defer srv.Close()
	hooks := []Webhook{{Name: "ops", URL: srv.URL, Secret: "s"}}
	_ = hooks[0].Validate()
	(&Alerter{Outbox: ob, Webhooks: hooks}).Revoked(context.Background(), ledger.Key{ID: "vk1"}, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- (&Sender{Outbox: ob, Webhooks: hooks, Interval: time.Hour}).Run(ctx) }()
	<-delivered
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
}

func ptr[T any](v T) *T { return &v }

func fmtList[T any](v []T) string {
	b, _ := json.Marshal(v)
	s := strings.NewReplacer(`"`, "", ",", " ").Replace(string(b))
	return s
}

// TestSlackTextEscaped (issue 17): a run label, path or endpoint written
// by a client cannot mention a channel or hide a link in a Slack alert.
func TestSlackTextEscaped(t *testing.T) {
	payload := `{"id":"ev1","data":{"agent_run_label":"<!channel> run & co","key_id":"vk1","vendor":"stripe",` +
		`"call_id":"c1","method":"POST","path":"/v1/<http://evil.example|ok>","reserved_usd":"9","endpoint":"@everyone"}}`
	for _, typ := range []string{EventCallUnknown, EventKeyCapHit} {
		b, err := slackBody(typ, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		text := m["text"]
		if strings.ContainsAny(text, "<>") || strings.Contains(text, "@everyone") || !strings.Contains(text, "&lt;!channel&gt; run &amp; co") {
			t.Errorf("%s: %q", typ, text)
		}
	}
	if text := Text(EventCallUnknown, map[string]any{"path": "/v1/<http://evil.example|ok>"}); !strings.Contains(text, "/v1/&lt;http://evil.example|ok&gt;") {
		t.Errorf("path not escaped: %s", text)
	}
}

// TestOneChargeCrossingThresholdsInOrder: a charge that reaches 50, 80 and
// 100% of a key's cap at once sends the three key.threshold events in that
// order (the outbox's random ids used to decide it), for each of 12 keys.
func TestOneChargeCrossingThresholdsInOrder(t *testing.T) {
	store := openStore(t)
	clk := &clock{t: t0}
	rc := &receiver{t: t, secret: "whsec_a", now: clk.Now}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	hooks := []Webhook{{Name: "ops", URL: srv.URL, Secret: "whsec_a", Events: []string{EventKeyThreshold}}}
	if err := hooks[0].Validate(); err != nil {
		t.Fatal(err)
	}
	ob := store.(ledger.Outbox)
	a := &Alerter{Outbox: ob, Keys: store, Webhooks: hooks}
	ctx := context.Background()
	const keys = 12
	for i := range keys {
		key := ledger.Key{ID: fmt.Sprintf("vkO%02d", i), Hash: ledger.HashSecret(fmt.Sprint("o", i)), Vendor: "stripe",
			TotalCap: ptr(usd("10")), AllowedEndpoints: []string{"POST /v1/charges"}, RunLabel: "run-o",
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := store.CreateKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		callID := fmt.Sprintf("clO%02d", i)
		if _, err := store.Reserve(ctx, ledger.ReserveRequest{CallID: callID, KeyID: key.ID, Vendor: "stripe", Method: "POST",
			Path: "/v1/charges", Endpoint: "POST /v1/charges", Estimate: usd("10"), Now: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := store.Settle(ctx, callID, ledger.Settlement{StatusCode: 200, Cost: usd("10"), Now: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		a.KeySpent(ctx, key.ID, clk.Now())
		clk.Add(time.Second)
	}
	s := &Sender{Outbox: ob, Webhooks: hooks, Now: clk.Now, Batch: 5} // batches cut through crossings
	for range 3 * keys {
		if d, f, err := s.RunOnce(ctx); err != nil || f != 0 || d == 0 {
			break
		}
	}
	if len(rc.got) != 3*keys {
		t.Fatalf("%d events delivered; want %d", len(rc.got), 3*keys)
	}
	for i := range keys {
		var pcts []any
		for _, m := range rc.got[3*i : 3*i+3] {
			d := m["data"].(map[string]any)
			if d["key_id"] != fmt.Sprintf("vkO%02d", i) {
				t.Fatalf("event %v out of key order", d)
			}
			pcts = append(pcts, d["threshold_percent"])
		}
		if fmtList(pcts) != "[50 80 100]" {
			t.Errorf("key %d: thresholds sent %v, want [50 80 100]", i, pcts)
		}
	}
}
