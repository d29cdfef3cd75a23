package caddymodule

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// pinEnv reads `pin_env NAME...`: the values the named variables have in
// the process adapting the Caddyfile (nil for unset), which is where the
// Caddyfile's {$NAME} were just filled in.
//
// Syntax:
//
//	pin_env <NAME>...
func pinEnv(d *caddyfile.Dispenser, pinned map[string]*string) error {
	names := d.RemainingArgs()
	if len(names) == 0 {
		return d.ArgErr()
	}
	for _, name := range names {
		if v, ok := os.LookupEnv(name); ok {
			pinned[name] = &v
		} else {
			pinned[name] = nil
		}
	}
	return nil
}

// checkPinnedEnv compares the pinned values with the environment of the
// running process, which Caddy started with. A `caddy reload` adapts the
// Caddyfile in the reloading shell: a value that differs there would move
// the site or its upstreams, so the config is refused (Caddy keeps the
// running one). The message names the variables but not their values,
// which may be secrets.
func checkPinnedEnv(pinned map[string]*string, lookup func(string) (string, bool)) error {
	var diffs []string
	for name, want := range pinned {
		have, set := lookup(name)
		switch {
		case want == nil && set:
			diffs = append(diffs, name+" (unset in this config, set when Caddy started)")
		case want != nil && !set:
			diffs = append(diffs, name+" (set in this config, unset when Caddy started)")
		case want != nil && *want != have:
			diffs = append(diffs, name+" (a different value than when Caddy started)")
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	return fmt.Errorf("refusing this config: pin_env variables differ from the environment Caddy started with: %s. "+
		"The Caddyfile reads them ({$NAME}) where it is adapted, e.g. in the shell that ran `caddy reload`, and a "+
		"reload must not change them: reload with Caddy's own environment (systemctl reload, or the same exports), "+
		"or restart Caddy to change them", strings.Join(diffs, "; "))
}
