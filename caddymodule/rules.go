package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/keybrake/keybrake/rules"
	"github.com/keybrake/keybrake/vendors"
)

// vendorSubjects are, per vendor that names them, the subjects its calls
// carry, for the key API to check keys' rules against.
func (a *App) vendorSubjects() map[string][]string {
	out := map[string][]string{}
	for name, rt := range a.vendors {
		if sn, ok := rt.vendor.(vendors.SubjectNamer); ok {
			out[name] = sn.SubjectNames()
		}
	}
	return out
}

// defaultRules are the vendors' default_rules.
func (a *App) defaultRules() map[string]*rules.Rules {
	out := map[string]*rules.Rules{}
	for name, rt := range a.vendors {
		if r := rt.module.VendorBase().DefaultRules; !r.IsZero() {
			out[name] = r
		}
	}
	return out
}

// vaultKeyReaders read a vault key as each vendor's SDK sends it, for GET
// /vault/self.
func (a *App) vaultKeyReaders() []func(*http.Request) (string, bool) {
	var out []func(*http.Request) (string, bool)
	for _, name := range a.vendorNames() {
		out = append(out, a.vendors[name].vendor.Credential)
	}
	return out
}

// checkDefaultRules refuses a vendor's default_rules naming a subject its
// calls never carry.
func checkDefaultRules(name string, rt *vendorRuntime) error {
	sn, ok := rt.vendor.(vendors.SubjectNamer)
	if !ok {
		return nil
	}
	if rule, subject := rt.module.VendorBase().DefaultRules.UnknownSubject(sn.SubjectNames()); rule != "" {
		return fmt.Errorf("default_rules %s: %s calls carry no subject %q (they carry %v)", rule, name, subject, sn.SubjectNames())
	}
	return nil
}
