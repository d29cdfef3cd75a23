package postgres

import "github.com/keybrake/keybrake/ledger"

// AlwaysBatch makes a Postgres store write even a lone op through
// keybrake_batch, so that the contract suite exercises it call by call.
func AlwaysBatch(s ledger.Store) {
	if p, ok := s.(*postgresStore); ok {
		p.alwaysBatch = true
	}
}

// BatchFallbacks is how many of a Postgres store's batches failed and were
// written op by op.
func BatchFallbacks(s ledger.Store) uint64 {
	if p, ok := s.(*postgresStore); ok {
		return p.fallbacks.Load()
	}
	return 0
}

// Dialect and CallColumns are the backend's query pieces, for the plan
// test.
var (
	Dialect     = postgresDialect
	CallColumns = postgresCallColumns
)
