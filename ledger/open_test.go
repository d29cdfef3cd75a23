package ledger

import (
	"strings"
	"testing"
)

// TestRedactDSN: no password survives into a logged DSN, whatever form the
// DSN takes (issue 7, finding 10).
func TestRedactDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://kb:s3cretpw@db:5432/keybrake",
		"postgres://kb@db/keybrake?password=s3cretpw&sslmode=require",
		"postgresql://kb@db/keybrake?sslpassword=s3cretpw",
		"host=db user=kb password=s3cretpw dbname=keybrake",
		"postgres://kb:s3cretpw@db/keybrake?password=s3cretpw",
		"postgres://kb:s3cret%zzpw@db/keybrake",
	} {
		got := redactDSN(dsn)
		if strings.Contains(got, "s3cret") {
			t.Errorf("redactDSN(%q) = %q: the password shows", dsn, got)
		}
	}
	if got := redactDSN("sqlite:/var/lib/keybrake.db"); got != "sqlite:/var/lib/keybrake.db" {
		t.Errorf("sqlite DSN changed: %q", got)
	}
	if got := redactDSN("postgres://kb@db:5432/keybrake?sslmode=disable"); got != "postgres://kb@db:5432/keybrake?sslmode=disable" {
		t.Errorf("DSN without a password changed: %q", got)
	}
}
