// Package vendormodule is what a Keybrake vendor module is made of.
//
// A vendor kind (stripe, twilio, resend, declared, or one of your own) is
// a guest Caddy module in the keybrake.vendors namespace, as the encoders
// of Caddy's encode handler are modules in http.encoders: the keybrake app
// loads one module per vendor it declares, chosen by the vendor's "kind",
// and asks it for the vendors.Vendor the gate drives. A vendor module
//
//   - embeds Base, the options every vendor takes (upstream,
//     unknown_cost), so they sit in its JSON next to its own;
//   - implements Module: its Caddyfile options (CaddyfileOptions, read by
//     UnmarshalBlock), Provision (expanding its secrets with Base.Secret)
//     and Vendor;
//   - registers itself with caddy.RegisterModule in an init function.
//
// Importing the module's package into the Caddy build (a blank import, or
// xcaddy --with) is all it takes to add the kind; the keybrake app knows no
// kind by name. The built-in kinds are the packages under this one. It is
// named vendormodule, not vendors, so that it reads apart from package
// vendors, which every vendor module also imports.
package vendormodule

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/reconcile"
	"github.com/keybrake/keybrake/vendors"
)

// Namespace is the Caddy module namespace of the vendor kinds: the kind
// stripe is the module keybrake.vendors.stripe.
const Namespace = "keybrake.vendors"

// Module is what the keybrake app needs from a vendor module.
type Module interface {
	caddy.Module
	caddy.Provisioner
	caddyfile.Unmarshaler

	// CaddyfileOptions lists the options of the kind's vendor block
	// besides kind, upstream and unknown_cost, which Base reads.
	CaddyfileOptions() []Option

	// Vendor returns the vendor, known by name: the name its keys are
	// issued for, the ledger records and the logs show ("twilio", or
	// "twilio_eu" for a second Twilio account). Called once, after
	// Provision and Validate. A vendor whose secrets expanded to nothing
	// is still returned: the gate refuses its calls (see Base.Missing).
	Vendor(name string) (vendors.Vendor, error)

	// VendorBase returns the options every vendor takes, provisioned: a
	// module gets it by embedding Base.
	VendorBase() *Base
}

// JobRunner is implemented by a vendor module whose vendor needs a job of
// its own on the ledger while the config is live (Twilio: the reconciler
// that fetches the prices Twilio reports after the call).
type JobRunner interface {
	// Job returns the vendor's job on store, or nil when it has none
	// (turned off, or the vendor lacks its secrets). Called after Vendor,
	// when the app starts.
	Job(store ledger.Store, logger *zap.Logger) *Job
}

// Job is a vendor's background job.
type Job struct {
	// Name says what the job is in the logs ("Twilio price reconciler").
	Name string
	// Run runs the job until ctx is done.
	Run func(ctx context.Context) error
	// Fields are logged when the job starts.
	Fields []zap.Field
	// Finder, when set, asks the vendor what became of a call whose
	// outcome is unknown, for the app's call reconciler.
	Finder reconcile.Finder
}

// Base holds the options every vendor kind takes. A vendor module embeds
// it, and calls its Provision first from its own.
type Base struct {
	// Upstream is the vendor's API base URL, an absolute http or https
	// URL; placeholders are expanded. What it is for depends on the kind:
	// where Twilio's prices are fetched, where a Stripe object is looked
	// up; the route's reverse_proxy is what sends the gated calls.
	// Default: the kind's (none for a declared vendor).
	Upstream string `json:"upstream,omitempty"`

	// UnknownCost is deny or reserve: what to do with an allowed call
	// whose cost cannot be told from the request. Default: deny.
	UnknownCost string `json:"unknown_cost,omitempty"`

	// UnknownCostUSD is the amount reserved for such a call when
	// UnknownCost is reserve. Required then.
	UnknownCostUSD money.Micros `json:"unknown_cost_usd,omitempty"`

	repl       *caddy.Replacer
	upstream   string
	policy     gate.UnknownCostPolicy
	missing    []string
	missingEnv []string
}

// VendorBase implements Module.
func (b *Base) VendorBase() *Base { return b }

// Provision expands Upstream and checks the options of Base. Placeholders
// are expanded with the replacer the context carries under
// caddy.ReplacerCtxKey, if any (Check's, which expands every placeholder
// to nothing), else with Caddy's global one ({env.*}, {file.*}).
func (b *Base) Provision(ctx caddy.Context) error {
	b.repl, _ = ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if b.repl == nil {
		b.repl = caddy.NewReplacer()
	}
	b.missing, b.missingEnv = nil, nil
	switch b.UnknownCost {
	case "", "deny":
		b.policy = gate.UnknownCostPolicy{}
	case "reserve":
		if b.UnknownCostUSD <= 0 {
			return fmt.Errorf("unknown_cost reserve needs a positive amount")
		}
		b.policy = gate.UnknownCostPolicy{Reserve: true, Amount: b.UnknownCostUSD}
	default:
		return fmt.Errorf("unknown_cost must be deny or reserve, not %q", b.UnknownCost)
	}
	b.upstream = strings.TrimSpace(b.repl.ReplaceAll(b.Upstream, ""))
	if b.upstream != "" {
		u, err := url.Parse(b.upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("upstream %q: want an absolute http or https URL", b.upstream)
		}
	}
	return nil
}

// ExpandedUpstream is Upstream with its placeholders expanded, "" when
// not set.
func (b *Base) ExpandedUpstream() string { return b.upstream }

// UnknownCostPolicy is the gate's policy for calls of unknown cost.
func (b *Base) UnknownCostPolicy() gate.UnknownCostPolicy { return b.policy }

// Expand expands the placeholders of a setting that is not a secret (a
// Basic username).
func (b *Base) Expand(raw string) string { return b.repl.ReplaceAll(raw, "") }

// Secret expands a secret setting, named option in the vendor block. One
// that expands to nothing is recorded as missing, with the environment
// variables its {env.NAME} placeholders name: the vendor then still loads,
// and the gate refuses its calls with a 503 that says what to set, while
// the other vendors work.
func (b *Base) Secret(option, raw string) string {
	v := b.repl.ReplaceAll(raw, "")
	if strings.TrimSpace(v) == "" {
		b.missing = append(b.missing, option)
		for _, m := range envPlaceholder.FindAllStringSubmatch(raw, -1) {
			b.missingEnv = append(b.missingEnv, m[1])
		}
	}
	return v
}

// envPlaceholder matches Caddy's {env.NAME} placeholder.
var envPlaceholder = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)

// Missing names the secret settings that expanded to nothing, and the
// environment variables behind them; both empty when the vendor has its
// secrets.
func (b *Base) Missing() (settings, env []string) { return b.missing, b.missingEnv }

// NotConfigured is the message of the 503 the gate answers for the vendor
// name while it lacks its secrets, naming what to set; "" when it has
// them.
func (b *Base) NotConfigured(name string) string {
	if len(b.missing) == 0 {
		return ""
	}
	missing := strings.Join(b.missing, " and ")
	if len(b.missingEnv) == 0 {
		return "Keybrake is not configured for " + name + " (missing: " + missing + "); set it in the keybrake global option."
	}
	return "Keybrake is not configured for " + name + ": set the environment variable " +
		strings.Join(b.missingEnv, " and ") + " and restart Keybrake (" + missing + " in the keybrake global option)."
}
