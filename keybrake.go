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
	// The ledger backends register themselves with the ledger package.
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)
