package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/money"
)

// TestPostgresZeroCostCallsSkipTheKeyLock: while another transaction holds
// the key row the way a spend reservation does through its commit (FOR NO
// KEY UPDATE, as keybrake_reserve and every counter update take it), a zero-cost
// call still goes through, a spend call waits, and a revocation that has
// committed is seen by the zero-cost path at once.
func TestPostgresZeroCostCallsSkipTheKeyLock(t *testing.T) {
	dsn := pgTestDatabase(t)
	s := pgTestOpen(t, dsn)
	k := pgTestKey(t, s, "vkZeroCost0000000000001", nil)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM vault_keys WHERE id = $1 FOR NO KEY UPDATE`, k.ID); err != nil {
		t.Fatal(err)
	}

	res, err := pgTestReserve(s, k, "clZeroCostFree000000001", 0)
	if err != nil || res.Outcome != ledger.OutcomeForwarded || res.Remaining != 100*money.PerDollar {
		t.Fatalf("zero-cost call under the key lock: %+v, %v", res, err)
	}
	// A spend call must wait for the lock: bounded by a short deadline.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = s.Reserve(short, ledger.ReserveRequest{
		CallID: "clZeroCostSpend00000001", KeyID: k.ID, Vendor: k.Vendor, Method: "POST",
		Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents", Estimate: money.PerDollar, Now: pgTestT0.Add(time.Minute),
	})
	cancel()
	if err == nil {
		t.Fatal("a spend reservation went through while another transaction held the key row")
	}
	_ = tx.Rollback(ctx)

	if _, err := s.RevokeKey(ctx, k.ID, pgTestT0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	res, err = pgTestReserve(s, k, "clZeroCostRevoked000001", 0)
	if err != nil || res.Outcome != ledger.OutcomeRevoked {
		t.Fatalf("zero-cost call after revocation: %+v, %v", res, err)
	}
	u, err := s.GetKey(ctx, k.ID, pgTestT0)
	if err != nil {
		t.Fatal(err)
	}
	// The spend reservation gave up waiting, but the server may still have
	// run it once the lock was released: then it counts, with its $1.
	spendRan := u.Calls == 2 && u.Reserved == money.PerDollar
	if !(u.Calls == 1 && u.Reserved == 0) && !spendRan {
		t.Fatalf("usage = calls %d reserved %s; want the zero-cost call counted (and the spend call only with its $1)", u.Calls, u.Reserved)
	}
	if _, err := pgTestReserve(s, ledger.Key{ID: "vkNoSuchKey000000000001", Vendor: "stripe"}, "clZeroCostMissing000001", 0); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("zero-cost call on an unknown key: %v", err)
	}
}
