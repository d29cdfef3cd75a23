package alerts

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/keybrake/keybrake/ledger"
)

// Defaults of a Sender.
const (
	DefaultInterval    = 5 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultMinBackoff  = 10 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultGiveUpAfter = 72 * time.Hour
	DefaultBatch       = 10
)

// EventClaimer is the part of the ledger's outbox a Sender uses: it claims
// due events and records how each delivery went (a ledger.Outbox is one).
type EventClaimer interface {
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]ledger.OutboxEvent, error)
	EventDelivered(ctx context.Context, id string, now time.Time) error
	EventFailed(ctx context.Context, id string, lastError string, next time.Time, giveUp bool) error
}

// Sender delivers the outbox's events: it claims due events, POSTs each to
// its webhook, signed, and marks it delivered on a 2xx answer; any other
// answer or error schedules a retry with exponential backoff (MinBackoff
// doubling up to MaxBackoff) until GiveUpAfter from the event's creation.
// Several senders on one ledger (a fleet) share the work through the
// outbox's leases; an event may be sent twice if a sender dies between the
// receiver's answer and marking it delivered, never zero times.
type Sender struct {
	Outbox   EventClaimer
	Webhooks []Webhook
	// Client sends the requests. Default: an http.Client with Timeout.
	Client *http.Client
	// Timeout bounds one delivery. Default 10s.
	Timeout time.Duration
	// Interval is the time between polls of the outbox when it is idle.
	// Default 5s.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait before a retry.
	// Defaults 10s and 1h.
	MinBackoff, MaxBackoff time.Duration
	// GiveUpAfter is how long after its creation an event is retried.
	// Default 72h.
	GiveUpAfter time.Duration
	// Batch bounds the events claimed at once; with Timeout it sets the
	// lease, how long the events of a sender that died wait. Default 10.
	Batch int
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *zap.Logger
	// Wake, when set, makes Run poll at once when it receives (a test's
	// clock moving, or an event just enqueued).
	Wake <-chan struct{}
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) log() *zap.Logger {
	if s.Logger == nil {
		return zap.NewNop()
	}
	return s.Logger
}

// lease is how long a claimed event is kept from other senders: longer than
// one batch of deliveries can take.
func (s *Sender) lease(n int) time.Duration {
	return time.Duration(n+1)*cmp.Or(max(s.Timeout, 0), DefaultTimeout) + time.Minute
}

// RunOnce claims the due events and tries each once. It returns how many
// were delivered and how many failed.
func (s *Sender) RunOnce(ctx context.Context) (delivered, failed int, err error) {
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	now := s.now()
	// The claim is not cut short by ctx: a claim the ledger committed while
	// the sender stopped listening would keep its events until the lease
	// ends. Once it returns, a stopping sender hands them back.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(max(s.Timeout, 0), DefaultTimeout))
	events, err := s.Outbox.ClaimEvents(cctx, now, s.lease(batch), batch)
	cancel()
	if err != nil {
		return 0, 0, fmt.Errorf("claiming events: %w", err)
	}
	// The claim picks the oldest due events, but neither ledger returns them
	// in that order: send them oldest first, so a crossing's thresholds
	// arrive 50, 80, 100.
	sort.SliceStable(events, func(i, j int) bool { return events[i].CreatedAt.Before(events[j].CreatedAt) })
	for i, e := range events {
		if ctx.Err() != nil {
			// Stopping: hand the unsent claims back at once, rather than
			// at the end of their lease, for the next sender or start.
			s.unclaim(events[i:])
			return delivered, failed, ctx.Err()
		}
		if s.deliver(ctx, e) {
			delivered++
		} else {
			failed++
		}
	}
	return delivered, failed, nil
}

func (s *Sender) webhook(name string) *Webhook {
	for i := range s.Webhooks {
		if s.Webhooks[i].Name == name {
			return &s.Webhooks[i]
		}
	}
	return nil
}

// deliver sends one event and records the result; it reports success.
func (s *Sender) deliver(ctx context.Context, e ledger.OutboxEvent) bool {
	log := s.log().With(zap.String("event_id", e.ID), zap.String("type", e.Type),
		zap.String("webhook", e.Webhook), zap.Int("attempt", e.Attempts))
	w := s.webhook(e.Webhook)
	if w == nil {
		// The webhook left the config: keep the event for when it is back,
		// or until it is too old.
		s.failed(ctx, log, e, "webhook not configured")
		return false
	}
	body := e.Payload
	if w.Format == FormatSlack {
		b, err := slackBody(e.Type, e.Payload)
		if err != nil {
			s.failed(ctx, log, e, "rendering slack body: "+err.Error())
			return false
		}
		body = b
	}
	status, err := s.post(ctx, w, e, body)
	if err == nil && status/100 != 2 {
		err = fmt.Errorf("receiver answered %d", status)
	}
	if err != nil {
		s.failed(ctx, log, e, err.Error())
		return false
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(max(s.Timeout, 0), DefaultTimeout))
	defer cancel()
	if err := s.Outbox.EventDelivered(mctx, e.ID, s.now()); err != nil {
		// Delivered but not recorded: it is sent again after the lease
		// (at least once).
		log.Error("recording delivered event", zap.Error(err))
		return true
	}
	log.Info("event delivered", zap.Int("status", status))
	return true
}

func (s *Sender) post(ctx context.Context, w *Webhook, e ledger.OutboxEvent, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(max(s.Timeout, 0), DefaultTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Keybrake-Webhooks/1")
	req.Header.Set(HeaderSignature, Sign(w.Secret, s.now(), body))
	req.Header.Set("Keybrake-Event-Id", e.ID)
	req.Header.Set("Keybrake-Event-Type", e.Type)
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("posting to webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// unclaim makes claimed events due now again.
func (s *Sender) unclaim(events []ledger.OutboxEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(max(s.Timeout, 0), DefaultTimeout))
	defer cancel()
	for _, e := range events {
		if err := s.Outbox.EventFailed(ctx, e.ID, "sender stopped", s.now(), false); err != nil {
			s.log().Warn("handing back a claimed event", zap.String("event_id", e.ID), zap.Error(err))
		}
	}
}

// failed schedules the next attempt of e, or gives it up when it is too old.
// It is recorded even when ctx is done (the sender stopping mid-delivery),
// so the event does not wait for its lease to end.
func (s *Sender) failed(ctx context.Context, log *zap.Logger, e ledger.OutboxEvent, reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cmp.Or(max(s.Timeout, 0), DefaultTimeout))
	defer cancel()
	now := s.now()
	next := now.Add(s.backoff(e.Attempts))
	giveUp := next.Sub(e.CreatedAt) > cmp.Or(max(s.GiveUpAfter, 0), DefaultGiveUpAfter)
	if err := s.Outbox.EventFailed(ctx, e.ID, reason, next, giveUp); err != nil {
		log.Error("recording failed event", zap.String("error_reason", reason), zap.Error(err))
		return
	}
	if giveUp {
		log.Error("event given up", zap.String("error_reason", reason))
		return
	}
	log.Warn("event delivery failed; will retry", zap.String("error_reason", reason), zap.Time("next_attempt_at", next))
}

// backoff is the wait after the attempt-th failed attempt: MinBackoff
// doubled per attempt, at most MaxBackoff.
func (s *Sender) backoff(attempt int) time.Duration {
	d := cmp.Or(max(s.MinBackoff, 0), DefaultMinBackoff)
	limit := cmp.Or(max(s.MaxBackoff, 0), DefaultMaxBackoff)
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Run delivers events until ctx is done, polling every Interval (or at
// once on Wake), and at once again while a batch was full.
func (s *Sender) Run(ctx context.Context) error {
	interval := cmp.Or(max(s.Interval, 0), DefaultInterval)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-s.Wake:
		}
		delivered, failed, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.log().Error("sending events", zap.Error(err))
		}
		wait := interval
		if batch := max(s.Batch, 0); err == nil && delivered+failed >= cmp.Or(batch, DefaultBatch) {
			wait = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// slackBody renders an event as a Slack incoming-webhook message.
func slackBody(typ string, payload []byte) ([]byte, error) {
	var env struct {
		ID   string         `json:"id"`
		Data map[string]any `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // 1000000 stays 1000000, not 1e+06
	if err := dec.Decode(&env); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"text": Text(typ, env.Data)})
}
