package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keybrake/keybrake/gate"
	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
	"github.com/keybrake/keybrake/money"
	"github.com/keybrake/keybrake/rules"
	"github.com/keybrake/keybrake/vendors/stripe"
)

// These benchmarks time the gate alone, in process: no Caddy, no network.
// The "upstream" is a handler that writes a small Stripe object. They show
// what one call costs in the ledger (each spend call is a durable Reserve
// and a durable Settle) apart from HTTP.
//
//	go test -run '^$' -bench . -benchtime 2s ./bench/
//	KEYBRAKE_TEST_PG_DSN=postgres://… go test -run '^$' -bench Postgres ./bench/

// fixture is a gate over a ledger with one or more issued keys.
type fixture struct {
	g       *gate.Gate
	secrets []string
}

func newFixture(b *testing.B, dsn string, keys int, opts ...func(*ledger.Key)) *fixture {
	b.Helper()
	ctx := context.Background()
	store, err := ledger.Open(ctx, dsn, nil)
	if err != nil {
		b.Fatalf("opening ledger: %v", err)
	}
	b.Cleanup(func() { _ = store.Close() })
	cache, err := ledger.NewKeyCache(store, 0, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	v, err := stripe.New(stripe.Config{SecretKey: "sk_test_bench"})
	if err != nil {
		b.Fatal(err)
	}
	g, err := gate.New(gate.Config{Vendor: v, Store: store, Keys: cache})
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{g: g}
	now := time.Now()
	limit := money.Micros(1_000_000_000 * money.PerDollar)
	for i := range keys {
		secret := "kbbench" + randomSuffix(i)
		k := ledger.Key{
			ID:               "vkbench" + randomSuffix(i),
			Hash:             ledger.HashSecret(secret),
			Vendor:           stripe.Name,
			TotalCap:         &limit,
			AllowedEndpoints: []string{"POST /v1/payment_intents", "GET /v1/customers/*"},
			RunLabel:         "bench",
			CreatedAt:        now,
			ExpiresAt:        now.Add(2 * time.Hour),
		}
		for _, o := range opts {
			o(&k)
		}
		if err := store.CreateKey(ctx, k); err != nil {
			b.Fatalf("creating key: %v", err)
		}
		f.secrets = append(f.secrets, secret)
	}
	return f
}

var keySeq atomic.Int64

func randomSuffix(i int) string {
	return strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "") +
		itoa(int(keySeq.Add(1))) + "x" + itoa(i)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	n := len(buf)
	for i > 0 {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
	}
	return string(buf[n:])
}

// upstream answers like Stripe would, without a network.
func upstream(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost {
		_, _ = w.Write([]byte(`{"id":"pi_bench","object":"payment_intent","amount":100,"currency":"usd","status":"requires_payment_method"}`))
		return nil
	}
	_, _ = w.Write([]byte(`{"id":"cus_x","object":"customer"}`))
	return nil
}

func newRequest(secret string, spend bool) *http.Request {
	var r *http.Request
	if spend {
		r = httptest.NewRequest(http.MethodPost, "/v1/payment_intents", strings.NewReader("amount=100&currency=usd"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(http.MethodGet, "/v1/customers/cus_x", nil)
	}
	r.Header.Set("Authorization", "Bearer "+secret)
	return r
}

func serial(b *testing.B, f *fixture, spend bool) {
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := f.g.ServeHTTP(w, newRequest(f.secrets[0], spend), upstream); err != nil || w.Code != http.StatusOK {
			b.Fatalf("gate: %v, HTTP %d: %s", err, w.Code, w.Body)
		}
	}
}

// parallel runs GOMAXPROCS×4 goroutines, each with its own key when the
// fixture has enough of them.
func parallel(b *testing.B, f *fixture, spend bool) {
	b.ReportAllocs()
	b.SetParallelism(4)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		secret := f.secrets[int(next.Add(1)-1)%len(f.secrets)]
		for pb.Next() {
			w := httptest.NewRecorder()
			if err := f.g.ServeHTTP(w, newRequest(secret, spend), upstream); err != nil || w.Code != http.StatusOK {
				b.Errorf("gate: %v, HTTP %d: %s", err, w.Code, w.Body)
				return
			}
		}
	})
}

func sqliteDSN(b *testing.B) string {
	return "sqlite:" + filepath.Join(b.TempDir(), "ledger.db")
}

func pgDSN(b *testing.B) string {
	dsn := os.Getenv("KEYBRAKE_TEST_PG_DSN")
	if dsn == "" {
		b.Skip("KEYBRAKE_TEST_PG_DSN is not set")
	}
	return dsn
}

// BenchmarkUpstreamOnly is the floor: the fake upstream and the recorder,
// without the gate.
func BenchmarkUpstreamOnly(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		_ = upstream(w, newRequest("x", true))
	}
}

func BenchmarkGateZeroCostSQLite(b *testing.B) { serial(b, newFixture(b, sqliteDSN(b), 1), false) }
func BenchmarkGateSpendSQLite(b *testing.B)    { serial(b, newFixture(b, sqliteDSN(b), 1), true) }
func BenchmarkGateSpendSQLiteParallel(b *testing.B) {
	parallel(b, newFixture(b, sqliteDSN(b), 64), true)
}

// benchRules are make bench's "-rules" keys' rules: every kind of rule a
// spend call is checked against, none tight enough to refuse one.
const benchRules = `{"max_call_usd": 10, "max_calls": 1000000000, "rate": "10000/1s", "allow": {"currency": ["usd"]}}`

// withBenchRules gives a fixture's keys benchRules.
func withBenchRules(b *testing.B) func(*ledger.Key) {
	r, err := rules.Parse("rules", json.RawMessage(benchRules))
	if err != nil {
		b.Fatal(err)
	}
	return func(k *ledger.Key) { k.Rules = r }
}

// BenchmarkGateSpendSQLiteParallelRules is BenchmarkGateSpendSQLiteParallel
// with benchRules on every key.
func BenchmarkGateSpendSQLiteParallelRules(b *testing.B) {
	parallel(b, newFixture(b, sqliteDSN(b), 64, withBenchRules(b)), true)
}

// BenchmarkGateSpendPostgresParallelKeyEachRules is
// BenchmarkGateSpendPostgresParallelKeyEach with benchRules on every key.
func BenchmarkGateSpendPostgresParallelKeyEachRules(b *testing.B) {
	parallel(b, newFixture(b, pgDSN(b), 64, withBenchRules(b)), true)
}

func BenchmarkGateZeroCostPostgres(b *testing.B) { serial(b, newFixture(b, pgDSN(b), 1), false) }
func BenchmarkGateSpendPostgres(b *testing.B)    { serial(b, newFixture(b, pgDSN(b), 1), true) }
func BenchmarkGateSpendPostgresParallel1Key(b *testing.B) {
	parallel(b, newFixture(b, pgDSN(b), 1), true)
}
func BenchmarkGateSpendPostgresParallelKeyEach(b *testing.B) {
	parallel(b, newFixture(b, pgDSN(b), 64), true)
}
