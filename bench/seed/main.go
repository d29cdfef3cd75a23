// Command seed fills a Keybrake ledger with call history, quickly, for the
// scale benchmark (scripts/bench-scale.sh, BENCHMARKS.md "The ledger at
// scale"): -calls calls of -runs runs (one expired key each) spread evenly
// over the -days days before -end, in bulk INSERT … SELECT statements of
// -chunk rows (generate_series on Postgres, a recursive CTE on SQLite), then
// ANALYZE. The daily rollups the summaries read are kept as the ledger
// keeps them: by its triggers on SQLite; on Postgres the rollup trigger is
// disabled while a chunk is inserted and the chunk's rollups are added in
// the same transaction (so seeding takes an exclusive lock on calls: run
// it before the benchmark's traffic, not during). Each key's totals are set
// to what its seeded calls add up to.
//
//	seed -ledger sqlite:/tmp/l.db -calls 1000000
//	seed -ledger postgres://… -calls 10000000 -runs 100000 -days 30
//
// The calls, by i = 0…calls-1: key and run i×runs/calls; stripe, and twilio
// every 10th; outcome cap_hit every 50th (refused, no cost), revoked every
// 200th (refused), otherwise forwarded; cost state unknown every 1000th,
// released every 100th, otherwise settled at $0.10 with vendor transaction
// id pi_seed<i> (SMseed<i> on twilio). It prints the values the benchmark's
// reads use.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/keybrake/keybrake/ledger"
	_ "github.com/keybrake/keybrake/ledger/postgres"
	_ "github.com/keybrake/keybrake/ledger/sqlite"
)

func main() {
	dsn := flag.String("ledger", "", "the ledger: sqlite:PATH or postgres://…")
	calls := flag.Int("calls", 1_000_000, "calls to add")
	runs := flag.Int("runs", 3000, "runs (one key each), each a block of consecutive calls")
	days := flag.Int("days", 30, "days the calls spread over")
	endFlag := flag.String("end", "", "RFC 3339 time the calls end before; default now")
	chunk := flag.Int("chunk", 250_000, "calls per INSERT statement")
	fresh := flag.Bool("fresh", false, "start from an empty ledger: remove the SQLite file, or drop and create the Postgres database")
	flag.Parse()
	if *fresh {
		if err := freshLedger(context.Background(), *dsn); err != nil {
			fmt.Fprintln(os.Stderr, "seed:", err)
			os.Exit(1)
		}
	}
	if err := run(*dsn, *calls, *runs, *days, *endFlag, *chunk); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// seedPlan is what one seeding writes.
type seedPlan struct {
	calls, runs, chunk int
	start              time.Time
	step               time.Duration // between two calls
}

func run(dsn string, calls, runs, days int, endFlag string, chunk int) error {
	if dsn == "" || calls < 0 || days < 1 || chunk < 1 {
		return fmt.Errorf("give -ledger, -calls >= 0, -days >= 1 and -chunk >= 1")
	}
	if runs <= 0 || runs > calls {
		runs = min(calls, 3000) // no keys for an empty ledger
	}
	end := time.Now().UTC()
	if endFlag != "" {
		var err error
		if end, err = time.Parse(time.RFC3339, endFlag); err != nil {
			return fmt.Errorf("-end: %w", err)
		}
	}
	span := time.Duration(days) * 24 * time.Hour
	p := seedPlan{calls: calls, runs: runs, chunk: chunk, start: end.Add(-span).Truncate(time.Microsecond)}
	if calls > 0 {
		p.step = (span / time.Duration(calls)).Truncate(time.Microsecond)
	}
	ctx := context.Background()
	// Open migrates the ledger to the current schema.
	store, err := ledger.Open(ctx, dsn, nil)
	if err != nil {
		return err
	}
	store.Close()
	began := time.Now()
	if strings.HasPrefix(dsn, "sqlite:") {
		err = seedSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), p)
	} else {
		err = seedPostgres(ctx, dsn, p)
	}
	if err != nil {
		return err
	}
	mid := calls / 2
	fmt.Printf("seeded %d calls of %d runs in %s\n", calls, runs, time.Since(began).Round(time.Millisecond))
	fmt.Printf("SEED_RUN=seed/run/%d\nSEED_DAY=%s\nSEED_TXN=pi_seed%d\nSEED_SINCE=%s\n",
		int64(mid)*int64(runs)/int64(max(calls, 1)), p.start.Add(time.Duration(mid)*p.step).Format(time.DateOnly), mid-mid%10+2,
		p.start.Add(time.Duration(mid)*p.step).Format(time.RFC3339))
	os.Stdout.Sync()
	return nil
}

// freshLedger empties the ledger dsn names: the SQLite file and its WAL
// are removed; the Postgres database is dropped and created again (from the
// server's postgres database).
func freshLedger(ctx context.Context, dsn string) error {
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || name == "postgres" || strings.ContainsAny(name, `"/`) {
		return fmt.Errorf("-fresh: the DSN must name a database of its own, not %q", name)
	}
	u.Path = "/postgres"
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	quoted := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoted+" WITH (FORCE)"); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+quoted)
	return err
}

// seedColumns and the expressions below (over i, the call's number) are
// the same on both backends but for the time arithmetic.
const seedColumns = `call_id, key_id, run_label, vendor, method, path, endpoint, status_code, outcome,
	reserved, cost, vendor_txn_id, cost_state, day, started_at, finished_at`

func seedValues(started, day string) string {
	return `'clSeed' || i, 'vkSeed' || $RUN, 'seed/run/' || $RUN,
		CASE WHEN i % 10 = 0 THEN 'twilio' ELSE 'stripe' END, 'POST',
		CASE WHEN i % 10 = 0 THEN '/2010-04-01/Accounts/AC1/Messages.json' ELSE '/v1/payment_intents' END,
		CASE WHEN i % 10 = 0 THEN 'POST /2010-04-01/Accounts/*/Messages.json' ELSE 'POST /v1/payment_intents' END,
		CASE WHEN i % 50 = 1 THEN 429 WHEN i % 200 = 3 THEN 401 ELSE 200 END,
		CASE WHEN i % 50 = 1 THEN 'cap_hit' WHEN i % 200 = 3 THEN 'revoked' ELSE 'forwarded' END,
		CASE WHEN i % 50 = 1 OR i % 200 = 3 THEN 0 ELSE 100000 END,
		CASE WHEN i % 50 = 1 OR i % 200 = 3 OR i % 1000 = 7 OR i % 100 = 5 THEN 0 ELSE 100000 END,
		CASE WHEN i % 50 = 1 OR i % 200 = 3 OR i % 100 = 5 THEN ''
			WHEN i % 10 = 0 THEN 'SMseed' || i ELSE 'pi_seed' || i END,
		CASE WHEN i % 50 = 1 OR i % 200 = 3 THEN 'none' WHEN i % 1000 = 7 THEN 'unknown'
			WHEN i % 100 = 5 THEN 'released' ELSE 'settled' END,
		` + day + `, ` + started + `, ` + started
}

func seedSQLite(ctx context.Context, path string, p seedPlan) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	start, step := p.start.UnixNano(), p.step.Nanoseconds()
	if p.runs == 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO keys (id, hash, vendor, daily_cap, total_cap, allowed_endpoints, run_label, created_at, expires_at)
		SELECT 'vkSeed' || i, randomblob(32), 'stripe', NULL, 1000000000000, '["POST /v1/payment_intents"]',
			'seed/run/' || i, ?, ?
		FROM n`, p.runs, start, start); err != nil {
		return fmt.Errorf("seeding keys: %w", err)
	}
	started := fmt.Sprintf("(%d + i * %d)", start, step)
	day := fmt.Sprintf("(%s / 86400000000000 * 86400000000000)", started)
	values := strings.ReplaceAll(seedValues(started, day), "$RUN", fmt.Sprintf("(i * %d / %d)", p.runs, max(p.calls, 1)))
	for from := 0; from < p.calls; from += p.chunk {
		to := min(from+p.chunk, p.calls)
		if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
			INSERT INTO calls (`+seedColumns+`) SELECT `+values+` FROM n`, from, to); err != nil {
			return fmt.Errorf("seeding calls %d-%d: %w", from, to, err)
		}
		fmt.Fprintf(os.Stderr, "seed: %d calls\n", to)
	}
	if _, err := db.ExecContext(ctx, `UPDATE keys SET spent = t.spent, calls = t.calls FROM
		(SELECT key_id, sum(cost) AS spent, sum(cost_state <> 'none') AS calls FROM calls
			WHERE key_id LIKE 'vkSeed%' GROUP BY key_id) AS t
		WHERE keys.id = t.key_id`); err != nil {
		return fmt.Errorf("setting the seeded keys' totals: %w", err)
	}
	_, err = db.ExecContext(ctx, `ANALYZE`)
	return err
}

func seedPostgres(ctx context.Context, dsn string, p seedPlan) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO vault_keys (id, hash, vendor, total_cap, allowed_endpoints, run_label, created_at, expires_at)
		SELECT 'vkSeed' || i, sha256(('seed' || i)::bytea), 'stripe', 1000000000000, '{POST /v1/payment_intents}',
			'seed/run/' || i, $2, $2
		FROM generate_series(0, $1::int - 1) AS i`, p.runs, p.start); err != nil {
		return fmt.Errorf("seeding keys: %w", err)
	}
	started := "($1::timestamptz + i * $2::interval)"
	values := strings.ReplaceAll(seedValues(started, "("+started+" AT TIME ZONE 'UTC')::date"), "$RUN",
		fmt.Sprintf("(i::bigint * %d / %d)", p.runs, max(p.calls, 1)))
	for from := 0; from < p.calls; from += p.chunk {
		to := min(from+p.chunk, p.calls)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var seq int64
			if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM calls`).Scan(&seq); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `ALTER TABLE calls DISABLE TRIGGER calls_roll`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO calls (`+seedColumns+`) SELECT `+values+`
				FROM generate_series($3::int, $4::int - 1) AS i`, p.start, p.step, from, to); err != nil {
				return err
			}
			// The chunk's rollups, as the trigger would have added them.
			if _, err := tx.Exec(ctx, `INSERT INTO call_days AS d (day, run_label, vendor, endpoint, outcome, shard,
					calls, forwarded, replays, cap_hits, refused, spent, reserved)
				SELECT day, run_label, vendor, endpoint, outcome, 0, sum(call_count),
					coalesce(sum(call_count) FILTER (WHERE cost_state <> 'none' OR replay_of <> ''), 0),
					coalesce(sum(call_count) FILTER (WHERE replay_of <> ''), 0),
					coalesce(sum(call_count) FILTER (WHERE outcome IN ('cap_hit', 'budget_hit')), 0),
					coalesce(sum(call_count) FILTER (WHERE cost_state = 'none' AND replay_of = '' AND outcome NOT IN ('cap_hit', 'budget_hit')), 0),
					coalesce(sum(cost), 0), coalesce(sum(reserved) FILTER (WHERE cost_state IN ('reserved', 'unknown')), 0)
				FROM calls WHERE seq > $1 GROUP BY day, run_label, vendor, endpoint, outcome
				ON CONFLICT (day, run_label, vendor, endpoint, outcome, shard) DO UPDATE SET
					calls = d.calls + EXCLUDED.calls, forwarded = d.forwarded + EXCLUDED.forwarded,
					replays = d.replays + EXCLUDED.replays, cap_hits = d.cap_hits + EXCLUDED.cap_hits,
					refused = d.refused + EXCLUDED.refused, spent = d.spent + EXCLUDED.spent,
					reserved = d.reserved + EXCLUDED.reserved`, seq); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `ALTER TABLE calls ENABLE TRIGGER calls_roll`)
			return err
		})
		if err != nil {
			return fmt.Errorf("seeding calls %d-%d: %w", from, to, err)
		}
		fmt.Fprintf(os.Stderr, "seed: %d calls\n", to)
	}
	if _, err := conn.Exec(ctx, `UPDATE vault_keys k SET spent = t.spent, calls = t.calls FROM
		(SELECT key_id, sum(cost)::bigint AS spent, count(*) FILTER (WHERE cost_state <> 'none') AS calls FROM calls
			WHERE key_id LIKE 'vkSeed%' GROUP BY key_id) AS t
		WHERE k.id = t.key_id`); err != nil {
		return fmt.Errorf("setting the seeded keys' totals: %w", err)
	}
	_, err = conn.Exec(ctx, `ANALYZE`)
	return err
}
