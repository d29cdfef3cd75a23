#!/usr/bin/env bash
# bench-scale.sh measures the ledger at scale (docs/ledger.md, BENCHMARKS.md
# "The ledger at scale"): for each backend and each ledger size, it seeds a
# fresh ledger with that many calls of history (bench/seed: bulk INSERT …
# SELECT, the daily rollups kept as the ledger keeps them), starts Keybrake
# on it, and measures
#
#   spend       POST /v1/payment_intents amount=100 through the gate, one key
#               per worker, BENCH_CONNS connections for BENCH_DURATION: req/s,
#               and CPU ms per call (Caddy's and a throwaway Postgres's: on
#               a small shared machine throughput moves by 10-20% from one
#               window to the next, the CPU a call takes much less)
#   each read   of the audit and the summaries, one connection for
#               BENCH_READ_DURATION: p50 and p99 (ms)
#
# The reads: the summary of a run and of a UTC day, the audit by vendor
# transaction id, by outcome (cap_hit), by cost state (unknown), by day, and
# a page in the middle of the history (since the middle's time: the keyset
# cursor's cost at page N).
#
# Environment:
#   BENCH_SCALE_SIZES     calls to seed, one size a run  (default "0 1000000 10000000")
#   BENCH_SCALE_BACKENDS  sqlite and/or postgres         (default "sqlite postgres")
#   BENCH_DURATION        spend window, whole seconds    (default 10s)
#   BENCH_SCALE_SPEND_WINDOWS  spend windows per ledger, averaged (default 3)
#   BENCH_WARMUP          warm-up of each window         (default 2s)
#   BENCH_READ_DURATION   window of each read            (default 3s)
#   BENCH_CONNS           spend connections              (default 64)
#   KEYBRAKE_TEST_PG_DSN  the Postgres server to use (a database
#                         keybrake_bench_scale is dropped and created on it);
#                         without it, a throwaway one is started
#   CADDY                 the Caddy binary               (default bin/caddy)
#
# Seeding 10 million calls takes minutes and several GB of disk; run it on a
# quiet machine. Everything is on loopback and stopped on exit. Nothing here
# asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

SIZES="${BENCH_SCALE_SIZES:-0 1000000 10000000}"
BACKENDS="${BENCH_SCALE_BACKENDS:-sqlite postgres}"
DURATION="${BENCH_DURATION:-10s}"
SPEND_WINDOWS="${BENCH_SCALE_SPEND_WINDOWS:-3}"
WARMUP="${BENCH_WARMUP:-2s}"
READ_DURATION="${BENCH_READ_DURATION:-3s}"
CONNS="${BENCH_CONNS:-64}"
CADDY="${CADDY:-$root/bin/caddy}"
TOKEN="bench-token-$RANDOM$RANDOM"

if [[ ! -x "$CADDY" ]]; then
	echo "bench-scale: no Caddy binary at $CADDY (run make build)" >&2
	exit 1
fi

BENCH_NAME=bench-scale
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
caddy_pid=""

echo "==> machine: $(nproc) CPUs, $(go version | awk '{print $3}'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> building the fake upstream, the load generator and the seeder"
go build -o "$work/upstream" ./bench/upstream
go build -o "$work/load" ./bench/load
go build -o "$work/seed" ./bench/seed

pg_dsn=""
if [[ " $BACKENDS " == *" postgres "* ]]; then
	base="${KEYBRAKE_TEST_PG_DSN:-}"
	if [[ -z "$base" ]]; then
		out="$(PGPORT="$(free_port)" scripts/pg-start.sh "$work/pg")"
		pg_dir="$work/pg"
		base="$(sed -n 's/^KEYBRAKE_TEST_PG_DSN=//p' <<<"$out")"
	fi
	pg_dsn="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/keybrake_bench_scale")))' "$base")"
fi

up_port="$(free_port)"
"$work/upstream" -addr "127.0.0.1:$up_port" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$up_port/"

# start_caddy LEDGER: Keybrake on that ledger, at $kb.
start_caddy() {
	local port admin
	port="$(free_port)"
	admin="$(free_port)"
	cat >"$work/scale.Caddyfile" <<EOF
{
	admin 127.0.0.1:$admin
	auto_https off
	persist_config off
	log {
		output discard
		level WARN
	}
	keybrake {
		ledger $1
		api_token {env.KEYBRAKE_API_TOKEN}
		vendor stripe {
			secret_key sk_test_bench
		}
	}
}

http://127.0.0.1:$port {
	handle /vault/* {
		keybrake_api
	}
	handle /v1/* {
		keybrake stripe
		reverse_proxy 127.0.0.1:$up_port {
			header_up Host {upstream_hostport}
		}
	}
}
EOF
	XDG_DATA_HOME="$work/xdg-data" XDG_CONFIG_HOME="$work/xdg-config" HOME="$work" KEYBRAKE_API_TOKEN="$TOKEN" \
		"$CADDY" run --config "$work/scale.Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
	caddy_pid=$!
	pids+=("$caddy_pid")
	kb="http://127.0.0.1:$port"
	wait_http "$kb/vault/keys"
}

stop_caddy() {
	kill "$caddy_pid" 2>/dev/null || true
	wait "$caddy_pid" 2>/dev/null || true
	caddy_pid=""
}

issue_keys() { # N -> file of vault keys
	local i resp
	: >"$work/keys"
	for i in $(seq 1 "$1"); do
		resp="$(curl -fsS --max-time 10 -X POST "$kb/vault/keys" \
			-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
			-d '{"vendor":"stripe","total_usd_cap":1000000000,"allowed_endpoints":["POST /v1/payment_intents"],"expires_in":"2h","agent_run_label":"bench-scale"}')"
		sed -n 's/.*"vault_key":"\([A-Za-z0-9]*\)".*/\1/p' <<<"$resp" >>"$work/keys"
	done
}

results="$work/results.tsv"
: >"$results"
cpu_results="$work/cpu.tsv"
: >"$cpu_results"
clk_tck="$(getconf CLK_TCK)"
for backend in $BACKENDS; do
	for size in $SIZES; do
		case "$backend" in
		sqlite) dsn="sqlite:$work/scale.db" ;;
		postgres) dsn="$pg_dsn" ;;
		*)
			echo "bench-scale: unknown backend $backend" >&2
			exit 1
			;;
		esac
		echo "==> $backend, $size calls: seeding"
		"$work/seed" -fresh -ledger "$dsn" -calls "$size" >"$work/seed.out" 2>"$work/seed.log"
		grep '^seeded' "$work/seed.out" | sed 's/^/    /'
		eval "$(grep '^SEED_' "$work/seed.out")"
		# The seed leaves gigabytes of dirty pages: flushed now, so that the
		# spend window's commits do not wait behind their writeback.
		sync
		start_caddy "$dsn"
		issue_keys "$CONNS"
		name="$backend/$size"
		for _ in $(seq 1 "$SPEND_WINDOWS"); do
			"$work/load" -name "$name spend" -url "$kb/v1/payment_intents" -method POST -body 'amount=100&currency=usd' \
				-keys "$work/keys" -c "$CONNS" -d "$DURATION" -warmup "$WARMUP" -out "$results" >/dev/null &
			load_pid=$!
			# The CPU of the measured window (after the warm-up): Caddy's,
			# which holds the SQLite ledger, and a throwaway Postgres's.
			sleep "${WARMUP%s}"
			ticks0=$(($(proc_ticks "$caddy_pid") + $(pg_ticks)))
			wait "$load_pid"
			ticks1=$(($(proc_ticks "$caddy_pid") + $(pg_ticks)))
			printf '%s\t%s\n' "$name" "$((ticks1 - ticks0))" >>"$cpu_results"
		done
		while IFS='|' read -r read path; do
			"$work/load" -name "$name $read" -url "$kb$path" -H "Authorization: Bearer $TOKEN" \
				-c 1 -d "$READ_DURATION" -warmup 1s -out "$results" >/dev/null
		done <<EOF
summary run|/vault/summary?agent_run_label=$SEED_RUN
summary day|/vault/summary?day=$SEED_DAY
audit vendor_txn_id|/vault/audit?vendor_txn_id=$SEED_TXN
audit outcome|/vault/audit?outcome=cap_hit&limit=100
audit cost_state|/vault/audit?cost_state=unknown&limit=100
audit day|/vault/audit?day=$SEED_DAY&limit=100
audit mid-history page|/vault/audit?since=$SEED_SINCE&limit=100
EOF
		stop_caddy
	done
done

echo
echo "==> results: spend in req/s (mean of $SPEND_WINDOWS windows; $CONNS connections, one key each) and the CPU it took per call (Caddy's, with"
echo "    the SQLite ledger in it, plus a throwaway Postgres's; an outside Postgres is not counted);"
echo "    reads p50 / p99 in ms (one connection)"
awk -F'\t' -v tck="$clk_tck" '
	FNR == NR { ticks[$1] += $2; next }
	{ split($1, w, " "); key = w[1]; what = substr($1, length(key) + 2)
	  if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	  if (what == "spend") { rps[key] += $5; ok[key] += $2; windows[key]++
	    spend[key] = sprintf("%.0f", rps[key] / windows[key]); cpu[key] = sprintf("%.3f", 1000 * ticks[key] / tck / ok[key]) }
	  else { cols[what] = 1; cell[key, what] = sprintf("%.2f / %.2f", $6, $8); if (!(what in corder)) { corder[what] = ++m; cname[m] = what } } }
	END {
		printf "| ledger | spend req/s | CPU ms/call"; for (j = 1; j <= m; j++) printf " | %s", cname[j]; print " |"
		printf "| --- | --- | ---"; for (j = 1; j <= m; j++) printf " | ---"; print " |"
		for (i = 1; i <= n; i++) { k = order[i]; printf "| %s | %s | %s", k, spend[k], cpu[k]
			for (j = 1; j <= m; j++) printf " | %s", cell[k, cname[j]]; print " |" }
	}' "$cpu_results" "$results"
if [[ -n "${BENCH_RESULTS:-}" ]]; then
	cp "$results" "$BENCH_RESULTS"
fi
