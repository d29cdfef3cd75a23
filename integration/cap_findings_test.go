package integration

import (
	"testing"
)

// TestCapFindings runs every attack on the cap found in issue 7 through a
// real Caddy node (bin/caddy from this repository) in front of the
// simulated vendors, on the embedded ledger and on Postgres.
func TestCapFindings(t *testing.T) {
	cases := append(append([]capCase{}, stripeCapCases...), twilioCapCases...)
	cases = append(cases, resendCapCases...)
	for _, ledgerKind := range []string{"sqlite", "postgres"} {
		t.Run(ledgerKind, func(t *testing.T) {
			need(t, ledgerKind == "postgres")
			dsn := sqliteLedger(t)
			if ledgerKind == "postgres" {
				dsn = freshDatabase(t)
			}
			sim := newSim()
			target := startCapNode(t, sim, dsn)
			for _, cc := range cases {
				t.Run(cc.name, func(t *testing.T) {
					sim.Reset()
					cc.run(t, target, sim)
				})
			}
		})
	}
}
