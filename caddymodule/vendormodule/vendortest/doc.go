// Package vendortest shows, in its test, that a vendor kind can be added
// from outside caddymodule: it defines a vendor module of its own
// (keybrake.vendors.flatfee), declares a vendor of that kind in a
// Caddyfile, and sends calls through the gate of a Caddy running in the
// test, with nothing in caddymodule knowing the kind.
package vendortest
