package postgres_test

import (
	"context"
	"testing"

	"github.com/keybrake/keybrake/ledger"
)

// TestPostgresTryLock: one holder at a time across two stores (two nodes)
// on one database; released, the lock can be taken again.
func TestPostgresTryLock(t *testing.T) {
	pgTestDSN(t)
	db := pgTestDatabase(t)
	a, b := pgTestOpen(t, db).(ledger.Locker), pgTestOpen(t, db).(ledger.Locker)
	ctx := context.Background()
	release, ok, err := a.TryLock(ctx, "reconcile")
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "reconcile"); err != nil || ok {
		t.Fatalf("second node took a held lock: %v, %v", ok, err)
	}
	if rel, ok, err := b.TryLock(ctx, "other"); err != nil || !ok {
		t.Fatalf("a lock of another name = %v, %v", ok, err)
	} else {
		rel()
	}
	release()
	release2, ok, err := b.TryLock(ctx, "reconcile")
	if err != nil || !ok {
		t.Fatalf("TryLock after release = %v, %v", ok, err)
	}
	release2()
}
