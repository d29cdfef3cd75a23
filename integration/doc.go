// Package integration holds Keybrake's end-to-end tests: a real Caddy binary
// built with xcaddy (bin/caddy), a real Postgres and the embedded ledger,
// stripe-mock upstream, and the official vendor SDKs pointed at Keybrake.
//
// The tests need, from the environment (scripts/test.sh sets them all):
//
//	KEYBRAKE_CADDY_BIN       the built binary (default ../bin/caddy)
//	KEYBRAKE_TEST_PG_DSN     a Postgres the tests may create databases on
//	KEYBRAKE_STRIPE_MOCK_URL a running stripe-mock (else one is started
//	                         from PATH or GOPATH/bin)
//
// Without them the tests skip, unless KEYBRAKE_REQUIRE_E2E=1, when they
// fail: CI sets it so that a missing service can never pass for a green run.
package integration
