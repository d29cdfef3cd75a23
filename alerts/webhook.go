package alerts

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
)

// Event types.
const (
	EventKeyThreshold    = "key.threshold"
	EventKeyCapHit       = "key.cap_hit"
	EventKeyRevoked      = "key.revoked"
	EventCallUnknown     = "call.unknown"
	EventBudgetThreshold = "budget.threshold"
)

// EventTypes lists every event type, in documentation order.
var EventTypes = []string{EventKeyThreshold, EventKeyCapHit, EventKeyRevoked, EventBudgetThreshold, EventCallUnknown,
	EventApprovalRequested, EventApprovalDecided, EventApprovalExpired}

// DefaultThresholds are the percentages of a cap that raise key.threshold
// (and budget.threshold) when no thresholds are configured.
var DefaultThresholds = []int{50, 80, 100}

// Body formats.
const (
	// FormatKeybrake is the default body: the event as JSON,
	// {"id","type","created","data"}.
	FormatKeybrake = "keybrake"
	// FormatSlack is a Slack-compatible incoming-webhook body, {"text"},
	// also understood by Mattermost, Rocket.Chat and Discord's /slack
	// endpoint.
	FormatSlack = "slack"
)

// Webhook is one receiver of events.
type Webhook struct {
	// Name identifies the webhook in the outbox and the logs; unique.
	Name string
	// URL receives a POST per event.
	URL string
	// Secret signs every body (Keybrake-Signature). Required.
	Secret string
	// Format is FormatKeybrake (default) or FormatSlack.
	Format string
	// Thresholds are the percentages of a cap, 1..100, that raise
	// key.threshold and budget.threshold. Default DefaultThresholds.
	Thresholds []int
	// Events, when set, limits the webhook to these event types.
	// Default: every type.
	Events []string
}

// Validate checks w and fills its defaults.
func (w *Webhook) Validate() error {
	if w.Name == "" {
		return errors.New("webhook needs a name")
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("webhook %s: url %q is not an http(s) URL", w.Name, w.URL)
	}
	if w.Secret == "" {
		return fmt.Errorf("webhook %s: a signing secret is required (e.g. secret {env.KEYBRAKE_WEBHOOK_SECRET})", w.Name)
	}
	switch w.Format {
	case "":
		w.Format = FormatKeybrake
	case FormatKeybrake, FormatSlack:
	default:
		return fmt.Errorf("webhook %s: format %q is not keybrake or slack", w.Name, w.Format)
	}
	if len(w.Thresholds) == 0 {
		w.Thresholds = slices.Clone(DefaultThresholds)
	}
	for _, t := range w.Thresholds {
		if t < 1 || t > 100 {
			return fmt.Errorf("webhook %s: threshold %d%% is not between 1 and 100", w.Name, t)
		}
	}
	sort.Ints(w.Thresholds)
	w.Thresholds = slices.Compact(w.Thresholds)
	for _, e := range w.Events {
		if !slices.Contains(EventTypes, e) {
			return fmt.Errorf("webhook %s: unknown event type %q (want one of %v)", w.Name, e, EventTypes)
		}
	}
	return nil
}

// wants tells whether the webhook takes events of type typ.
func (w *Webhook) wants(typ string) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, typ)
}
