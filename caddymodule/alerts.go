package caddymodule

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/alerts"
	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/ledger"
)

// WebhookConfig is one receiver of Keybrake's alert events (key.threshold,
// key.cap_hit, key.revoked, budget.threshold, call.unknown), sent from the
// ledger's outbox, signed with Keybrake-Signature.
type WebhookConfig struct {
	// Name identifies the webhook in the outbox; unique. Renaming a
	// webhook leaves its undelivered events behind.
	Name string `json:"name"`
	// URL receives a POST per event. Placeholders are expanded.
	URL string `json:"url"`
	// Secret signs each body: Keybrake-Signature: t=<unix>,v1=<hex
	// HMAC-SHA256(secret, t + "." + body)>. Required; use
	// {env.KEYBRAKE_WEBHOOK_SECRET}.
	Secret string `json:"secret"`
	// Format is "keybrake" (default: the event as JSON) or "slack" (a
	// Slack-compatible {"text": …} body).
	Format string `json:"format,omitempty"`
	// Thresholds are the percentages of a key's cap (and of a token's
	// budget) that send key.threshold (budget.threshold), once per
	// crossing; for a daily cap, once per UTC day. Default 50, 80, 100.
	Thresholds []int `json:"thresholds,omitempty"`
	// Events limits the webhook to these event types. Default: all.
	Events []string `json:"events,omitempty"`
}

// WebhookDelivery tunes how the outbox's events are sent.
type WebhookDelivery struct {
	// Interval between polls of the outbox when idle. Default 5s.
	Interval caddy.Duration `json:"interval,omitempty"`
	// Timeout of one delivery. Default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MinBackoff is the wait after a first failed delivery; it doubles per
	// attempt up to MaxBackoff. Defaults 10s and 1h.
	MinBackoff caddy.Duration `json:"min_backoff,omitempty"`
	MaxBackoff caddy.Duration `json:"max_backoff,omitempty"`
	// GiveUpAfter is how long after its creation an event is retried.
	// Default 72h.
	GiveUpAfter caddy.Duration `json:"give_up_after,omitempty"`
}

// webhooks reads the webhook blocks, placeholders replaced, and checks
// them, so that `caddy validate` reports a bad one.
func (a *App) webhooks(repl *caddy.Replacer) ([]alerts.Webhook, error) {
	hooks := make([]alerts.Webhook, 0, len(a.Webhooks))
	seen := map[string]bool{}
	for _, wc := range a.Webhooks {
		w := alerts.Webhook{
			Name: wc.Name, URL: repl.ReplaceAll(wc.URL, ""), Secret: repl.ReplaceAll(wc.Secret, ""),
			Format: wc.Format, Thresholds: wc.Thresholds, Events: wc.Events,
		}
		if err := w.Validate(); err != nil {
			return nil, err
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("webhook %s is declared twice", w.Name)
		}
		seen[w.Name] = true
		hooks = append(hooks, w)
	}
	return hooks, nil
}

// startAlerts builds the alerter on the open ledger and, when webhooks are
// configured, readies the sender as a background job.
func (a *App) startAlerts() error {
	if len(a.hooks) == 0 {
		return nil
	}
	hooks := a.hooks
	ob, ok := a.ledger.store.(ledger.Outbox)
	if !ok {
		return fmt.Errorf("webhooks: the %T ledger has no outbox", a.ledger.store)
	}
	wake := make(chan struct{}, 1)
	logger := a.logger.Named("alerts")
	a.alerts = &alerts.Alerter{Outbox: ob, Keys: a.ledger.store, Tokens: a.ledger.store, Webhooks: hooks, Logger: logger, Wake: wake,
		DashboardURL: a.DashboardURL}
	if a.ledger.approvals != nil {
		a.ledger.approvals.SetAlerts(a.alerts)
	}
	d := WebhookDelivery{}
	if a.WebhookDelivery != nil {
		d = *a.WebhookDelivery
	}
	sender := &alerts.Sender{
		Outbox: ob, Webhooks: hooks, Logger: logger, Wake: wake,
		Interval: time.Duration(d.Interval), Timeout: time.Duration(d.Timeout),
		MinBackoff: time.Duration(d.MinBackoff), MaxBackoff: time.Duration(d.MaxBackoff),
		GiveUpAfter: time.Duration(d.GiveUpAfter),
	}
	names := make([]string, len(hooks))
	for i, w := range hooks {
		names[i] = w.Name
	}
	a.jobs.jobs = append(a.jobs.jobs, backgroundJob{
		name: "webhook sender", run: sender.Run, logger: logger,
		fields: []zap.Field{zap.Strings("webhooks", names)},
	})
	return nil
}

// unmarshalWebhook reads a webhook block.
//
// Syntax:
//
//	webhook <name> {
//		url        <url>
//		secret     <signing secret>
//		format     keybrake|slack
//		thresholds <percent>...
//		events     <type>...
//	}
func unmarshalWebhook(d *caddyfile.Dispenser) (*WebhookConfig, error) {
	if !d.NextArg() {
		return nil, d.Errf("webhook needs a name, e.g. 'webhook ops { url … }'")
	}
	w := &WebhookConfig{Name: d.Val()}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "url", "secret", "format":
			if !d.NextArg() {
				return nil, d.ArgErr()
			}
			switch opt {
			case "url":
				w.URL = d.Val()
			case "secret":
				w.Secret = d.Val()
			default:
				w.Format = d.Val()
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
		case "thresholds":
			for d.NextArg() {
				v := d.Val()
				if len(v) > 1 && v[len(v)-1] == '%' {
					v = v[:len(v)-1]
				}
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 100 {
					return nil, d.Errf("threshold '%s' is not a percentage between 1 and 100", d.Val())
				}
				w.Thresholds = append(w.Thresholds, n)
			}
			if len(w.Thresholds) == 0 {
				return nil, d.ArgErr()
			}
		case "events":
			w.Events = append(w.Events, d.RemainingArgs()...)
			if len(w.Events) == 0 {
				return nil, d.ArgErr()
			}
		default:
			return nil, d.Errf("unrecognized webhook option '%s'", opt)
		}
	}
	if w.URL == "" || w.Secret == "" {
		return nil, d.Errf("webhook %s needs a url and a secret", w.Name)
	}
	return w, nil
}

// unmarshalWebhookDelivery reads a webhook_delivery block.
//
// Syntax:
//
//	webhook_delivery {
//		interval      <duration>
//		timeout       <duration>
//		min_backoff   <duration>
//		max_backoff   <duration>
//		give_up_after <duration>
//	}
func unmarshalWebhookDelivery(d *caddyfile.Dispenser) (*WebhookDelivery, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	wd := &WebhookDelivery{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var dst *caddy.Duration
		switch d.Val() {
		case "interval":
			dst = &wd.Interval
		case "timeout":
			dst = &wd.Timeout
		case "min_backoff":
			dst = &wd.MinBackoff
		case "max_backoff":
			dst = &wd.MaxBackoff
		case "give_up_after":
			dst = &wd.GiveUpAfter
		default:
			return nil, d.Errf("unrecognized webhook_delivery option '%s'", d.Val())
		}
		dur, err := vendormodule.DurationArg(d)
		if err != nil {
			return nil, err
		}
		*dst = dur
	}
	return wd, nil
}
