package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keybrake/keybrake/internal/tcprelay"
	"github.com/keybrake/keybrake/ledger"
	"github.com/keybrake/keybrake/ledger/ledgertest"
	"github.com/keybrake/keybrake/ledger/postgres"
	"github.com/keybrake/keybrake/money"
)

// The Postgres tests need a server: scripts/pg-start.sh starts a throwaway
// one and prints the KEYBRAKE_TEST_PG_DSN to export. Each store gets a fresh
// database of its own on that server, dropped when the test ends.

// pgTestDSN returns the server's DSN, or skips the test without one (fails
// instead when KEYBRAKE_REQUIRE_PG=1, so CI cannot pass by skipping).
func pgTestDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("KEYBRAKE_TEST_PG_DSN")
	if dsn == "" {
		msg := "KEYBRAKE_TEST_PG_DSN is not set; run scripts/pg-start.sh and export the DSN it prints"
		if os.Getenv("KEYBRAKE_REQUIRE_PG") == "1" {
			t.Fatal(msg + " (KEYBRAKE_REQUIRE_PG=1)")
		}
		t.Skip(msg)
	}
	return dsn
}

var pgTestDBSeq atomic.Int64

// pgTestDatabase creates an empty database and returns its DSN.
func pgTestDatabase(t *testing.T) string {
	t.Helper()
	base := pgTestDSN(t)
	ctx := context.Background()
	name := fmt.Sprintf("kbtest_%d_%d", os.Getpid(), pgTestDBSeq.Add(1))

	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s: %v", ledger.RedactDSN(base), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connecting to drop %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v", name, err)
		}
	})
	return pgTestWithDatabase(t, base, name)
}

// pgTestWithDatabase returns dsn naming another database.
func pgTestWithDatabase(t *testing.T, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("KEYBRAKE_TEST_PG_DSN is not a postgres:// URL: %v", err)
	}
	u.Path = "/" + db
	return u.String()
}

// pgTestWithHost returns dsn with another host:port.
func pgTestWithHost(t *testing.T, dsn, hostport string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("not a postgres:// URL: %v", err)
	}
	u.Host = hostport
	return u.String()
}

// pgTestOpen opens a store on dsn, closed when the test ends.
func pgTestOpen(t *testing.T, dsn string) ledger.Store {
	t.Helper()
	s, err := ledger.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatalf("opening %s: %v", ledger.RedactDSN(dsn), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newPostgresStore is the contract suite's constructor: a fresh database.
func newPostgresStore(t *testing.T) ledger.Store {
	return pgTestOpen(t, pgTestDatabase(t))
}

// TestPostgresContract runs the contract every ledger backend passes.
func TestPostgresContract(t *testing.T) {
	pgTestDSN(t)
	ledgertest.Run(t, newPostgresStore)
}

// TestPostgresContractBatched runs the contract with every op, even a lone
// one, written through keybrake_batch (a busy node's path). A batch that
// fails and falls back to writing its ops one by one would pass the
// contract all the same, so it fails the test, except where an op is meant
// to fail (Batch/BadOp).
func TestPostgresContractBatched(t *testing.T) {
	pgTestDSN(t)
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		s := newPostgresStore(t)
		postgres.AlwaysBatch(s)
		t.Cleanup(func() {
			if n := postgres.BatchFallbacks(s); n > 0 && !strings.HasSuffix(t.Name(), "/Batch/BadOp") {
				t.Errorf("%d batches failed and were written op by op", n)
			}
		})
		return s
	})
}

var pgTestT0 = time.Date(2031, time.May, 17, 9, 30, 0, 0, time.UTC)

func pgTestKey(t *testing.T, s ledger.Store, id string, edit func(k *ledger.Key)) ledger.Key {
	t.Helper()
	total := 100 * money.PerDollar
	k := ledger.Key{
		ID:               id,
		Hash:             ledger.HashSecret("secret-" + id),
		Vendor:           "stripe",
		TotalCap:         &total,
		AllowedEndpoints: []string{"POST /v1/payment_intents"},
		RunLabel:         "run/" + id,
		CreatedAt:        pgTestT0,
		ExpiresAt:        pgTestT0.Add(24 * time.Hour),
	}
	if edit != nil {
		edit(&k)
	}
	if err := s.CreateKey(context.Background(), k); err != nil {
		t.Fatalf("CreateKey(%s): %v", id, err)
	}
	return k
}

func pgTestReserve(s ledger.Store, k ledger.Key, callID string, estimate money.Micros) (ledger.ReserveResult, error) {
	return s.Reserve(context.Background(), ledger.ReserveRequest{
		CallID: callID, KeyID: k.ID, Vendor: k.Vendor,
		Method: "POST", Path: "/v1/payment_intents", Endpoint: "POST /v1/payment_intents",
		Estimate: estimate, Now: pgTestT0.Add(time.Minute),
	})
}

// TestPostgresNodesShareCaps runs 500 reservations at once through two
// stores (two pools, as two Caddy nodes would have) against one key: the
// tighter cap is met exactly and never exceeded.
func TestPostgresNodesShareCaps(t *testing.T) {
	dsn := pgTestDatabase(t)
	nodes := []ledger.Store{pgTestOpen(t, dsn), pgTestOpen(t, dsn)}
	daily := 75 * money.PerDollar
	k := pgTestKey(t, nodes[0], "vkShared", func(k *ledger.Key) { k.DailyCap = &daily })

	const n = 500
	estimate := money.PerDollar / 4 // $0.25: the $75 daily cap admits exactly 300
	var forwarded, capHits atomic.Int64
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := pgTestReserve(nodes[i%2], k, fmt.Sprintf("callShared%04d", i), estimate)
			switch {
			case err != nil:
				errs <- err
			case res.Outcome == ledger.OutcomeForwarded:
				forwarded.Add(1)
			case res.Outcome == ledger.OutcomeCapHit:
				capHits.Add(1)
			default:
				errs <- fmt.Errorf("outcome %q", res.Outcome)
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	close(errs)
	for err := range errs {
		t.Fatalf("Reserve: %v", err)
	}
	t.Logf("%d concurrent reservations on two nodes in %v", n, elapsed)

	if forwarded.Load() != 300 || capHits.Load() != 200 {
		t.Fatalf("forwarded %d, cap hits %d; want 300, 200", forwarded.Load(), capHits.Load())
	}
	ku, err := nodes[1].GetKey(context.Background(), k.ID, pgTestT0)
	if err != nil {
		t.Fatal(err)
	}
	if ku.Reserved != daily || ku.DayReserved != daily || ku.Spent != 0 || ku.Calls != 300 || ku.CapHits != 200 {
		t.Fatalf("usage: reserved %s day %s spent %s calls %d cap hits %d; want 75, 75, 0, 300, 200",
			ku.Reserved, ku.DayReserved, ku.Spent, ku.Calls, ku.CapHits)
	}
}

// TestPostgresWatchKeys: a revocation on one node reaches a watcher on the
// other through LISTEN/NOTIFY.
func TestPostgresWatchKeys(t *testing.T) {
	dsn := pgTestDatabase(t)
	a, b := pgTestOpen(t, dsn), pgTestOpen(t, dsn)
	k := pgTestKey(t, a, "vkWatched", nil)

	w, ok := a.(ledger.KeyWatcher)
	if !ok {
		t.Fatal("postgres store does not implement ledger.KeyWatcher")
	}
	changes := pgTestWatch(t, w)
	pgTestAwaitListening(t, b, changes)

	if _, err := b.RevokeKey(context.Background(), k.ID, pgTestT0); err != nil {
		t.Fatal(err)
	}
	pgTestWant(t, changes, k.ID)
}

// TestPostgresWatchKeysReconnects: when its connection dies the watcher
// reconnects and says "*", since it may have missed notifications.
func TestPostgresWatchKeysReconnects(t *testing.T) {
	dsn := pgTestDatabase(t)
	direct := pgTestOpen(t, dsn)
	proxy := pgTestStartRelay(t, dsn)
	viaProxy := pgTestOpen(t, pgTestWithHost(t, dsn, proxy.Addr))
	k := pgTestKey(t, direct, "vkReconnect", nil)

	changes := pgTestWatch(t, viaProxy.(ledger.KeyWatcher))
	pgTestAwaitListening(t, direct, changes)

	proxy.Cut() // every connection through it drops; new ones still get through
	pgTestWant(t, changes, "*")

	if _, err := direct.RevokeKey(context.Background(), k.ID, pgTestT0); err != nil {
		t.Fatal(err)
	}
	pgTestWant(t, changes, k.ID)
}

// pgTestWatch runs WatchKeys until the test ends and returns what it reports.
func pgTestWatch(t *testing.T, w ledger.KeyWatcher) <-chan string {
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan string, 100)
	done := make(chan error, 1)
	go func() { done <- w.WatchKeys(ctx, func(id string) { changes <- id }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("WatchKeys returned %v; want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("WatchKeys did not return after its context was cancelled")
		}
	})
	return changes
}

// pgTestAwaitListening sends probe notifications until the watcher reports
// one, so the test knows LISTEN is in place before it acts.
func pgTestAwaitListening(t *testing.T, s ledger.Store, changes <-chan string) {
	t.Helper()
	probe := pgTestKey(t, s, "vkProbe", nil)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// RevokeKey notifies every time, even for a key already revoked.
		if _, err := s.RevokeKey(context.Background(), probe.ID, pgTestT0); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-changes:
			if id == probe.ID {
				// Drain any duplicate probes so they do not confuse the test.
				for {
					select {
					case <-changes:
					case <-time.After(200 * time.Millisecond):
						return
					}
				}
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("watcher never started listening")
}

func pgTestWant(t *testing.T, changes <-chan string, want string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case got := <-changes:
			if got == want {
				return
			}
			t.Logf("change %q while waiting for %q", got, want)
		case <-timeout:
			t.Fatalf("no change %q reported", want)
		}
	}
}

// TestPostgresUnavailable: a server that cannot be reached is
// ErrUnavailable, the signal the gate fails closed on, both when opening and
// for a store whose server goes away; and the store recovers when it comes
// back.
func TestPostgresUnavailable(t *testing.T) {
	dsn := pgTestDatabase(t)
	ctx := context.Background()

	t.Run("Open", func(t *testing.T) {
		dead := pgTestWithHost(t, dsn, pgTestDeadAddr(t))
		// A password in the DSN must not reach the error either.
		dead = strings.Replace(dead, "postgres://postgres@", "postgres://postgres:s3cretPW@", 1)
		_, err := ledger.Open(ctx, dead, nil)
		if !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Open(nothing listening) err = %v; want ErrUnavailable", err)
		}
		t.Logf("Open: %v", err)
		if strings.Contains(err.Error(), "s3cretPW") {
			t.Fatalf("error shows the DSN password: %v", err)
		}
	})

	t.Run("ServerGone", func(t *testing.T) {
		proxy := pgTestStartRelay(t, dsn)
		s := pgTestOpen(t, pgTestWithHost(t, dsn, proxy.Addr))
		k := pgTestKey(t, s, "vkGone", nil)
		if _, err := pgTestReserve(s, k, "callBefore", money.PerDollar); err != nil {
			t.Fatalf("Reserve before the outage: %v", err)
		}

		// A pooled connection that died while idle: the call may fail, but
		// only as ErrUnavailable (the pool then drops that connection).
		proxy.Cut()
		if _, err := pgTestReserve(s, k, "callCut", money.PerDollar); err != nil && !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Reserve on a cut connection err = %v; want nil or ErrUnavailable", err)
		} else {
			t.Logf("Reserve on a cut connection: %v", err)
		}

		proxy.Stop()
		shortCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.Ping(shortCtx); !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Ping during outage err = %v; want ErrUnavailable", err)
		}
		for i := range 3 { // whether or not the pool still holds a dead connection
			_, err := pgTestReserve(s, k, fmt.Sprintf("callDuring%d", i), money.PerDollar)
			if !errors.Is(err, ledger.ErrUnavailable) {
				t.Fatalf("Reserve during outage err = %v; want ErrUnavailable", err)
			}
			t.Logf("Reserve during outage: %v", err)
		}

		proxy.Restore(t)
		var err error
		for i := range 20 {
			if _, err = pgTestReserve(s, k, fmt.Sprintf("callAfter%d", i), money.PerDollar); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("Reserve after the outage: %v", err)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s, err := ledger.Open(ctx, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := s.Ping(ctx); !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("Ping on a closed store err = %v; want ErrUnavailable", err)
		}
	})
}

// TestPostgresMigrations: opening again applies nothing, and nodes opening
// a fresh database together apply each step exactly once.
func TestPostgresMigrations(t *testing.T) {
	ctx := context.Background()
	countVersions := func(t *testing.T, dsn string) (rows, distinct int) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").
			Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		return rows, distinct
	}

	t.Run("Reopen", func(t *testing.T) {
		dsn := pgTestDatabase(t)
		s := pgTestOpen(t, dsn)
		pgTestKey(t, s, "vkKept", nil)
		rows1, _ := countVersions(t, dsn)
		s2 := pgTestOpen(t, dsn)
		rows2, _ := countVersions(t, dsn)
		if rows1 == 0 || rows1 != rows2 {
			t.Fatalf("schema_migrations rows: %d after first open, %d after second", rows1, rows2)
		}
		if _, err := s2.GetKey(ctx, "vkKept", pgTestT0); err != nil {
			t.Fatalf("key lost by reopening: %v", err)
		}
	})

	t.Run("Race", func(t *testing.T) {
		dsn := pgTestDatabase(t)
		const nodes = 8
		var wg sync.WaitGroup
		errs := make(chan error, nodes)
		for range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := ledger.Open(ctx, dsn, nil)
				if err != nil {
					errs <- err
					return
				}
				s.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Open: %v", err)
		}
		if rows, distinct := countVersions(t, dsn); rows == 0 || rows != distinct {
			t.Fatalf("schema_migrations: %d rows, %d versions", rows, distinct)
		}
	})
}

// pgTestDeadAddr returns a loopback address where nothing listens.
func pgTestDeadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// pgTestStartRelay puts a loopback TCP relay in front of the test server,
// which a test can cut or stop to make it unreachable.
func pgTestStartRelay(t *testing.T, dsn string) *tcprelay.Relay {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return tcprelay.Start(t, u.Host)
}
