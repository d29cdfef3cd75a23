package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/keybrake/keybrake/caddymodule/vendormodule"
	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/vendors"
)

// A vendor is a guest module of the keybrake app in the keybrake.vendors
// namespace, chosen by its kind (package vendormodule): the app knows no
// kind by name. This file loads them, from JSON or from a `vendor <name>
// { … }` block.

// defaultKind is the kind of a vendor whose name is not a kind: a vendor
// named like a kind (stripe, twilio, resend) is of that kind.
const defaultKind = "declared"

// vendorSlot holds one vendor's JSON for ctx.LoadModule, which takes the
// module's namespace and the key that names it from the field's tag.
// App.Vendors maps vendor names to such JSON, and LoadModule reads the keys
// of a map as module names, so each vendor goes through a slot of its own.
type vendorSlot struct {
	Raw json.RawMessage `caddy:"namespace=keybrake.vendors inline_key=kind"`
}

// vendorRuntime is a provisioned vendor.
type vendorRuntime struct {
	module      vendormodule.Module
	vendor      vendors.Vendor
	unknownCost gate.UnknownCostPolicy
	// notConfigured, when set, is why the vendor cannot forward anything
	// (its secrets expanded to nothing): the gate answers every call with
	// a 503 and this message. The vendor still loads, so one unset vendor
	// does not keep Caddy or the other vendors from working.
	notConfigured string
	// job is the vendor's own background job (Twilio's price reconciler)
	// once the app has started; nil when it has none.
	job *vendormodule.Job
}

// vendorNameRE is what a vendor name may be: it is used in keys, routes
// and logs.
var vendorNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func validVendorName(name string) error {
	if !vendorNameRE.MatchString(name) {
		return fmt.Errorf("vendor name %q: want lower-case letters, digits, _ or -, starting with a letter, at most 32 characters", name)
	}
	return nil
}

// kindForName is the kind of a vendor declared without one.
func kindForName(name string) string {
	if _, err := caddy.GetModule(vendormodule.Namespace + "." + name); err == nil {
		return name
	}
	return defaultKind
}

// checkKind refuses a kind that is not a module, and a vendor named like
// a kind but of another kind: "stripe" is always Stripe.
func checkKind(name, kind string) error {
	if _, err := caddy.GetModule(vendormodule.Namespace + "." + kind); err != nil {
		var kinds []string
		for _, info := range caddy.GetModules(vendormodule.Namespace) {
			kinds = append(kinds, info.ID.Name())
		}
		return fmt.Errorf("unknown vendor kind %q (want %s)", kind, strings.Join(kinds, ", "))
	}
	if k := kindForName(name); k == name && kind != name {
		return fmt.Errorf("vendor %s is built in: its kind can only be %s, not %s", name, name, kind)
	}
	return nil
}

// withKind returns a vendor's JSON with its kind, the name's when the JSON
// has none.
func withKind(name string, raw json.RawMessage) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("decoding vendor config: %w", err)
		}
	}
	var kind string
	if k, ok := obj["kind"]; ok {
		if err := json.Unmarshal(k, &kind); err != nil {
			return nil, fmt.Errorf("kind: %w", err)
		}
	} else {
		kind = kindForName(name)
		obj["kind"], _ = json.Marshal(kind)
	}
	if err := checkKind(name, kind); err != nil {
		return nil, err
	}
	return json.Marshal(obj)
}

// loadVendor loads the module of the vendor name and builds the vendor.
func (a *App) loadVendor(ctx caddy.Context, name string) (*vendorRuntime, error) {
	if err := validVendorName(name); err != nil {
		return nil, err
	}
	raw, err := withKind(name, a.Vendors[name])
	if err != nil {
		return nil, err
	}
	slot := vendorSlot{Raw: raw}
	mod, err := ctx.LoadModule(&slot, "Raw")
	if err != nil {
		return nil, err
	}
	m, ok := mod.(vendormodule.Module)
	if !ok {
		return nil, fmt.Errorf("module %T is not a vendor module", mod)
	}
	v, err := m.Vendor(name)
	if err != nil {
		return nil, err
	}
	if v.Name() != name {
		v = renamed{Vendor: v, name: name}
	}
	b := m.VendorBase()
	return &vendorRuntime{module: m, vendor: v, unknownCost: b.UnknownCostPolicy(), notConfigured: b.NotConfigured(name)}, nil
}

// unmarshalVendor reads a `vendor <name> { … }` block of the keybrake
// global option into vendors, with the module of the block's kind; the
// dispenser is on "vendor".
func unmarshalVendor(d *caddyfile.Dispenser, declared map[string]json.RawMessage) error {
	seg := d.NewFromNextSegment()
	seg.Next()
	if !seg.NextArg() {
		return seg.ArgErr()
	}
	name := seg.Val()
	if seg.NextArg() {
		return seg.ArgErr()
	}
	if err := validVendorName(name); err != nil {
		return seg.Err(err.Error())
	}
	if _, dup := declared[name]; dup {
		return seg.Errf("vendor %s is declared twice", name)
	}
	kind, err := blockKind(seg, name)
	if err != nil {
		return err
	}
	info, _ := caddy.GetModule(vendormodule.Namespace + "." + kind)
	m, ok := info.New().(vendormodule.Module)
	if !ok {
		return seg.Errf("vendor %s: module %s is not a vendor module", name, info.ID)
	}
	seg.Reset()
	if err := m.UnmarshalCaddyfile(seg); err != nil {
		return err
	}
	raw := caddyconfig.JSONModuleObject(m, "kind", kind, nil)
	if err := checkVendor(name, raw); err != nil {
		return seg.Errf("vendor %s: %v", name, err)
	}
	declared[name] = raw
	return nil
}

// blockKind reads the kind of a vendor block, wherever its kind line is;
// the name's kind when it has none.
func blockKind(seg *caddyfile.Dispenser, name string) (string, error) {
	kind := kindForName(name)
	for seg.NextBlock(0) {
		opt := seg.Val()
		args := seg.RemainingArgs()
		for nesting := seg.Nesting(); seg.NextBlock(nesting); {
		}
		if opt != "kind" {
			continue
		}
		if len(args) != 1 {
			return "", seg.ArgErr()
		}
		if err := checkKind(name, args[0]); err != nil {
			return "", seg.Err(err.Error())
		}
		kind = args[0]
	}
	return kind, nil
}

// checkVendor loads a vendor's JSON as the app will, except that every
// placeholder expands to nothing, as if no secret were set: a mistake in a
// vendor block is reported with its line when the Caddyfile is adapted,
// whatever the environment the adapter runs in.
func checkVendor(name string, raw json.RawMessage) error {
	ctx, cancel := caddy.NewContext(caddy.Context{
		Context: context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewEmptyReplacer()),
	})
	defer cancel()
	a := &App{Vendors: map[string]json.RawMessage{name: raw}}
	_, err := a.loadVendor(ctx, name)
	return err
}

// renamed is a vendor known by another name than its kind's (a second
// Twilio account): keys, the ledger and logs know it by that name. It
// keeps the vendor's optional behaviours: its idempotency (the zero value,
// which honours nothing, when it has none) and its recorded path.
type renamed struct {
	vendors.Vendor
	name string
}

func (r renamed) Name() string { return r.name }

// Idempotency implements vendors.IdempotencyHonouring.
func (r renamed) Idempotency() vendors.Idempotency {
	if h, ok := r.Vendor.(vendors.IdempotencyHonouring); ok {
		return h.Idempotency()
	}
	return vendors.Idempotency{}
}

// RecordedPath implements vendors.PathRecorder.
func (r renamed) RecordedPath(path string) string {
	if pr, ok := r.Vendor.(vendors.PathRecorder); ok {
		return pr.RecordedPath(path)
	}
	return path
}

var (
	_ vendors.Vendor               = renamed{}
	_ vendors.IdempotencyHonouring = renamed{}
	_ vendors.PathRecorder         = renamed{}
)
