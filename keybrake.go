// Package keybrake is the Caddy plugin that caps what AI agents and workflow
// runs spend through paid vendor APIs. Importing it registers every
// Keybrake module, so that
//
//	xcaddy build --with github.com/keybrake/keybrake
//
// builds a Caddy with all of them.
package keybrake

import (
	// The Caddy modules.
	_ "github.com/keybrake/keybrake/caddymodule"
	// The vendor kinds, guest modules of the keybrake app in the
	// keybrake.vendors namespace. Another kind is added the same way: a
	// package that registers a vendormodule.Module, imported into the build.
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/declared"
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/resend"
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/stripe"
	_ "github.com/keybrake/keybrake/caddymodule/vendormodule/twilio"
	// The ledger backends register themselves with the ledger package.
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)
