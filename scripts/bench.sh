#!/usr/bin/env bash
# bench.sh measures Keybrake's gate against a plain Caddy reverse_proxy, side
# by side in one run, on one machine, against one fake upstream:
#
#   plain       Caddy reverse_proxy to the fake Stripe (bench/upstream)
#   zero-cost   Keybrake, GET /v1/customers/cus_x (allowed, costs $0), on the
#               embedded SQLite ledger and on Postgres, with one key shared
#               by every worker and one key per worker
#   spend       Keybrake, POST /v1/payment_intents amount=100 currency=usd, on
#               Postgres and SQLite, with one key shared by every worker
#               (reservations serialise on the key) and one key per worker;
#               "-rules": a key per worker carrying every kind of rule
#               (max_call_usd, max_calls, rate, allow), none tight enough
#               to refuse
#
# A fourth table compares spend with rules and without on each ledger in
# alternating short windows, in the order A B B A (then A B B A again,
# ...): the machine's speed drifts within a run, and Postgres's autovacuum
# lands in whichever window follows the writes that called it, by more
# than the rules cost; a steady drift cancels out of that order, and many
# short windows average the rest. It gives the ratio of the mean req/s
# with rules to the mean without, the lowest and highest ratio of
# adjacent windows, and each side's CPU per call.
#
# Every scenario gets a warm-up and a measured window of BENCH_DURATION with
# BENCH_CONNS keep-alive connections from bench/load (throughput), and a few
# are repeated with one connection ("@c1": no queueing, so the p50 there is
# the latency a call adds). The plain runs are done first and again last;
# ratios and added p50 use their mean. The benchmark Caddy logs at WARN to a
# file (so Keybrake's one INFO line per call is not written); two scenarios
# repeat zero-cost and spend on a Caddy logging at INFO to a file.
#
# A third table shows the ledger's group commit in each measured window, from
# the Keybrake Caddy's metrics (keybrake_ledger_batch*, on its admin
# endpoint): transactions written, ops (reservations and settlements) per
# transaction, and commits per call.
#
# A second table shows where the CPU went in each measured window (Caddy,
# Postgres, the fake upstream and the load generator, in CPU ms per request,
# from /proc), and how busy the whole machine was: on a small machine the
# four share the same cores, so CPU per request decides the ratios.
#
# Everything is on loopback and stopped on exit. It uses bin/caddy as it is
# (`make bench` builds it first). Nothing here asserts a time.
#
# Environment:
#   BENCH_DURATION  measured time per scenario, whole seconds (default 10s)
#   BENCH_WARMUP    warm-up per scenario, whole seconds  (default 2s)
#   BENCH_CONNS     concurrent connections                (default 64)
#   BENCH_RULES_PAIRS  windows of each kind in the rules comparison below
#                   (default 6: no rules, rules, rules, no rules, ...; 0
#                   skips it)
#   BENCH_RULES_DURATION  measured time of each of those windows (default 5s)
#   BENCH_ONLY      run only scenarios whose name matches this regex
#                   (the plain baselines always run)
#   BENCH_PROFILE   a directory: save a CPU profile of the Keybrake Caddy
#                   (from its admin /debug/pprof) during each Keybrake scenario
#   BENCH_RESULTS   also copy the raw results (TSV) to this file
#   KEYBRAKE_TEST_PG_DSN  use this Postgres instead of starting a throwaway one
#                   (the database gets the benchmark's keys and calls; its
#                   CPU is then not measured and shows up as other%)
#   CADDY           the Caddy binary                      (default bin/caddy)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-2s}"
CONNS="${BENCH_CONNS:-64}"
ONLY="${BENCH_ONLY:-}"
RULES_PAIRS="${BENCH_RULES_PAIRS:-6}"
RULES_DURATION="${BENCH_RULES_DURATION:-5s}"
PROFILE_DIR="${BENCH_PROFILE:-}"
CADDY="${CADDY:-$root/bin/caddy}"
TOKEN="bench-token-$RANDOM$RANDOM"

if [[ ! -x "$CADDY" ]]; then
	echo "bench: no Caddy binary at $CADDY (run make build)" >&2
	exit 1
fi

BENCH_NAME=bench
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

echo "==> machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(go version | awk '{print $3}'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "==> building the fake upstream and the load generator"
go build -o "$work/upstream" ./bench/upstream
go build -o "$work/load" ./bench/load

# --- Postgres -----------------------------------------------------------
pg_dsn="${KEYBRAKE_TEST_PG_DSN:-}"
if [[ -z "$pg_dsn" ]]; then
	echo "==> starting a throwaway Postgres on loopback (default settings: fsync on, synchronous_commit on)"
	out="$(PGPORT="$(free_port)" scripts/pg-start.sh "$work/pg")"
	pg_dir="$work/pg"
	pg_dsn="$(sed -n 's/^KEYBRAKE_TEST_PG_DSN=//p' <<<"$out")"
fi
echo "    Postgres: $pg_dsn"

# --- the fake upstream --------------------------------------------------
up_port="$(free_port)"
"$work/upstream" -addr "127.0.0.1:$up_port" >"$work/upstream.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")
wait_http "http://127.0.0.1:$up_port/"

# --- Caddy configurations -----------------------------------------------
# caddyfile NAME LEDGER LOGLEVEL WITH_PLAIN: writes $work/NAME.Caddyfile and
# sets the ports it uses in kb_port[NAME], admin_port[NAME], plain_port.
declare -A kb_port admin_port
plain_port="$(free_port)"
caddyfile() {
	local name="$1" ledger="$2" level="$3" with_plain="$4"
	kb_port[$name]="$(free_port)"
	admin_port[$name]="$(free_port)"
	{
		cat <<EOF
{
	admin 127.0.0.1:${admin_port[$name]}
	auto_https off
	persist_config off
	log {
		output file $work/$name.caddy-log.json {
			roll_disabled
		}
		level $level
	}
	keybrake {
		ledger $ledger
		api_token {env.KEYBRAKE_API_TOKEN}
		vendor stripe {
			secret_key sk_test_bench
		}
	}
}

(upstream) {
	reverse_proxy 127.0.0.1:$up_port {
		header_up Host {upstream_hostport}
	}
}

http://127.0.0.1:${kb_port[$name]} {
	handle /vault/* {
		keybrake_api
	}
	handle /v1/* {
		keybrake stripe
		import upstream
	}
}
EOF
		if [[ "$with_plain" == yes ]]; then
			cat <<EOF

# The baseline: the same route without the gate.
http://127.0.0.1:$plain_port {
	handle /v1/* {
		import upstream
	}
}
EOF
		fi
	} >"$work/$name.Caddyfile"
}

caddyfile pg "$pg_dsn" WARN yes
caddyfile sqlite "sqlite:$work/ledger.db" WARN no
caddyfile pginfo "$pg_dsn" INFO no

declare -A caddy_pid
start_caddy() { # NAME
	local name="$1"
	XDG_DATA_HOME="$work/xdg-data" XDG_CONFIG_HOME="$work/xdg-config" HOME="$work" \
		KEYBRAKE_API_TOKEN="$TOKEN" \
		"$CADDY" run --config "$work/$name.Caddyfile" --adapter caddyfile >"$work/$name.caddy.log" 2>&1 &
	pids+=($!)
	caddy_pid[$name]=$!
}

echo "==> starting Caddy: plain + Keybrake/Postgres (WARN), Keybrake/SQLite (WARN), Keybrake/Postgres (INFO to a file)"
start_caddy pg
# The Postgres Caddys share one database; start them one after another so
# migrations do not race.
wait_http "http://127.0.0.1:${kb_port[pg]}/vault/keys"
start_caddy pginfo
start_caddy sqlite
wait_http "http://127.0.0.1:${kb_port[pginfo]}/vault/keys"
wait_http "http://127.0.0.1:${kb_port[sqlite]}/vault/keys"
wait_http "http://127.0.0.1:$plain_port/v1/customers/cus_x"

# --- vault keys ------------------------------------------------------------
# RULES are the rules of the "-rules" scenarios' keys: every kind of rule a
# spend call is checked against, none of them tight enough to refuse one.
RULES='"rules":{"max_call_usd":10,"max_calls":1000000000,"rate":"10000/1s","allow":{"currency":["usd"]}}'
issue_key() { # CADDY_NAME [EXTRA_JSON] -> prints the vault key
	local resp extra="${2:+,$2}"
	resp="$(curl -fsS --max-time 10 -X POST "http://127.0.0.1:${kb_port[$1]}/vault/keys" \
		-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		-d '{"vendor":"stripe","total_usd_cap":1000000000,"allowed_endpoints":["POST /v1/payment_intents","GET /v1/customers/*"],"expires_in":"2h","agent_run_label":"bench"'"$extra"'}')"
	sed -n 's/.*"vault_key":"\([A-Za-z0-9]*\)".*/\1/p' <<<"$resp"
}

echo "==> issuing vault keys (cap \$1,000,000,000 each): 1 + $CONNS per ledger"
for backend in pg sqlite; do
	issue_key "$backend" >"$work/$backend.key"
	: >"$work/$backend.keys"
	: >"$work/${backend}rules.keys"
	for _ in $(seq 1 "$CONNS"); do
		issue_key "$backend" >>"$work/$backend.keys"
		issue_key "$backend" "$RULES" >>"$work/${backend}rules.keys"
	done
	if [[ ! -s "$work/$backend.key" ]] || [[ "$(grep -c . "$work/$backend.keys")" -ne "$CONNS" ]] ||
		[[ "$(grep -c . "$work/${backend}rules.keys")" -ne "$CONNS" ]]; then
		echo "bench: could not issue keys on $backend" >&2
		exit 1
	fi
done

# Check each path once before loading it.
smoke() { # URL [curl args...]
	local url="$1"
	shift
	local code
	code="$(curl -s -o "$work/smoke.out" -w '%{http_code}' --max-time 10 "$@" "$url")"
	if [[ "$code" != 200 ]]; then
		echo "bench: $url answered $code: $(head -c 300 "$work/smoke.out")" >&2
		exit 1
	fi
}
smoke "http://127.0.0.1:$plain_port/v1/customers/cus_x"
for backend in pg sqlite pginfo; do
	keyfile="$work/${backend/info/}.key"
	smoke "http://127.0.0.1:${kb_port[$backend]}/v1/customers/cus_x" -H "Authorization: Bearer $(cat "$keyfile")"
	smoke "http://127.0.0.1:${kb_port[$backend]}/v1/payment_intents" -H "Authorization: Bearer $(cat "$keyfile")" \
		-d amount=100 -d currency=usd
done

# --- the runs --------------------------------------------------------------
results="$work/results.tsv"
: >"$results"
GET_PATH=/v1/customers/cus_x
POST_PATH=/v1/payment_intents
POST_BODY='amount=100&currency=usd'

# CPU accounting: where the machine's CPU went during each measured window
# (proc_ticks and pg_ticks: bench-lib.sh).
cpu_file="$work/cpu.tsv"
: >"$cpu_file"
clk_tck="$(getconf CLK_TCK)"
# snapshot CADDY_PID: one line "caddy_ticks upstream_ticks pg_ticks
# cpu-line-of-/proc/stat"
snapshot() {
	echo "$(proc_ticks "$1") $(proc_ticks "$up_pid") $(pg_ticks) $(head -n1 /proc/stat | cut -d' ' -f2-)"
}
# cpu_delta NAME BEFORE AFTER: appends name, caddy s, upstream s, postgres s,
# busy%, iowait%, steal%
cpu_delta() {
	awk -v name="$1" -v tck="$clk_tck" -v a="$2" -v b="$3" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		# x[4..] = user nice system idle iowait irq softirq steal ...
		tot = 0; for (i = 4; i <= 11; i++) tot += y[i] - x[i]
		if (tot <= 0) tot = 1
		idle = y[7] - x[7]; io = y[8] - x[8]; st = y[11] - x[11]
		printf "%s\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%.0f\n", name, (y[1]-x[1])/tck, (y[2]-x[2])/tck, (y[3]-x[3])/tck,
			100*(tot-idle-io-st)/tot, 100*io/tot, 100*st/tot
	}' >>"$cpu_file"
}

# batch_counts NAME: "batches reserves finishes" so far in that Caddy's
# group commit (0 0 0 for a Caddy without it).
batch_file="$work/batch.tsv"
: >"$batch_file"
batch_counts() {
	curl -s --max-time 5 "http://127.0.0.1:${admin_port[$1]}/metrics" 2>/dev/null | awk '
		$1 == "keybrake_ledger_batches_total" { b = $2 }
		$1 == "keybrake_ledger_batch_reserves_total" { r = $2 }
		$1 == "keybrake_ledger_batch_finishes_total" { f = $2 }
		END { printf "%d %d %d\n", b, r, f }' || echo "0 0 0"
}

# scenario NAME CADDY_NAME(or plain) KIND(get|post) KEYS(none|one|each|each-rules) [CONNS]
scenario() {
	local name="$1" target="$2" kind="$3" keys="$4" conns="${5:-$CONNS}"
	if [[ -n "$ONLY" && "$target" != plain ]] && ! [[ "$name" =~ $ONLY ]]; then
		return 0
	fi
	local port backend cpid args=()
	if [[ "$target" == plain ]]; then
		port="$plain_port"
		cpid="${caddy_pid[pg]}"
	else
		cpid="${caddy_pid[$target]}"
		port="${kb_port[$target]}"
		backend="${target/info/}"
		case "$keys" in
		one) args+=(-key "$(cat "$work/$backend.key")") ;;
		each) args+=(-keys "$work/$backend.keys") ;;
		each-rules) args+=(-keys "$work/${backend}rules.keys") ;;
		esac
	fi
	if [[ "$kind" == get ]]; then
		args+=(-url "http://127.0.0.1:$port$GET_PATH")
	else
		args+=(-url "http://127.0.0.1:$port$POST_PATH" -method POST -body "$POST_BODY")
	fi
	local prof_pid=""
	if [[ -n "$PROFILE_DIR" && "$target" != plain ]]; then
		mkdir -p "$PROFILE_DIR"
		(sleep "$warmup_s" &&
			curl -s --max-time $((duration_s + 10)) -o "$PROFILE_DIR/${name//[\/@]/-}.pprof" \
				"http://127.0.0.1:${admin_port[$target]}/debug/pprof/profile?seconds=$((duration_s > 1 ? duration_s - 1 : 1))") &
		prof_pid=$!
	fi
	# CPU and batch snapshots at the start and the end of the measured window.
	local counted="$target"
	[[ "$target" == plain ]] && counted=""
	(sleep "$warmup_s" && snapshot "$cpid" >"$work/cpu.before" &&
		if [[ -n "$counted" ]]; then batch_counts "$counted"; else echo "0 0 0"; fi >"$work/batch.before") &
	local snap_pid=$!
	"$work/load" -name "$name" -c "$conns" -d "$DURATION" -warmup "$WARMUP" -out "$results" "${args[@]}"
	local after batch_after="0 0 0"
	after="$(snapshot "$cpid")"
	[[ -n "$counted" ]] && batch_after="$(batch_counts "$counted")"
	wait "$snap_pid" || true
	cpu_delta "$name" "$(cat "$work/cpu.before")" "$after"
	awk -v name="$name" -v a="$(cat "$work/batch.before")" -v b="$batch_after" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		printf "%s\t%d\t%d\t%d\n", name, y[1] - x[1], y[2] - x[2], y[3] - x[3]
	}' >>"$batch_file"
	if [[ -n "$prof_pid" ]]; then
		wait "$prof_pid" || true
	fi
}

# pg_settle pays the throwaway Postgres's vacuum debt before the SQLite
# scenarios: the autovacuum that the Postgres scenarios' writes call for
# otherwise lands in the next windows (a SQLite window measured 0.03 ms of
# Postgres CPU per call in several runs), whichever ledger they load.
pg_settle() {
	[[ -n "$pg_dir" ]] || return 0
	local psql
	psql="$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n1)"
	[[ -x "$psql" ]] || psql="$(command -v psql || true)"
	[[ -n "$psql" ]] || return 0
	"$psql" "$pg_dsn" -qc "VACUUM (ANALYZE)" >/dev/null 2>&1 || true
}

# Whole seconds, for sleep and pprof (BENCH_DURATION and BENCH_WARMUP are
# Go durations; "10s" and "2s" style is expected).
duration_s="$(sed -n 's/^\([0-9][0-9]*\)s$/\1/p' <<<"$DURATION")"
warmup_s="$(sed -n 's/^\([0-9][0-9]*\)s$/\1/p' <<<"$WARMUP")"
if [[ -z "$duration_s" || -z "$warmup_s" ]]; then
	echo "bench: BENCH_DURATION and BENCH_WARMUP must be whole seconds such as 10s" >&2
	exit 1
fi

echo "==> throughput: ${CONNS} connections, ${WARMUP} warm-up + ${DURATION} measured per scenario"
scenario plain-get plain get none
scenario plain-post plain post none
scenario zero-cost-sqlite-1key sqlite get one
scenario zero-cost-sqlite-key/worker sqlite get each
scenario zero-cost-pg-1key pg get one
scenario zero-cost-pg-key/worker pg get each
# Each "-rules" scenario runs straight after the same scenario without
# rules, on the same Caddy and ledger: the machine's speed drifts within a
# run, and their ratio is a target of its own (issue 18).
scenario spend-pg-1key pg post one
scenario spend-pg-key/worker pg post each
scenario spend-pg-key/worker-rules pg post each-rules
pg_settle
scenario spend-sqlite-1key sqlite post one
scenario spend-sqlite-key/worker sqlite post each
scenario spend-sqlite-key/worker-rules sqlite post each-rules
scenario zero-cost-pg-key/worker-INFO pginfo get each
scenario spend-pg-key/worker-INFO pginfo post each
scenario plain-get plain get none
scenario plain-post plain post none

# One connection: no queueing, so p50 is the latency one call adds.
echo "==> latency: 1 connection, ${WARMUP} warm-up + ${DURATION} measured per scenario"
scenario plain-get@c1 plain get none 1
scenario plain-post@c1 plain post none 1
scenario zero-cost-pg@c1 pg get one 1
scenario spend-pg@c1 pg post one 1
scenario spend-sqlite@c1 sqlite post one 1

# Rules against no rules, alternating (see the top): their own results,
# CPU and batch files, so that the tables above stay one row a scenario.
main_results="$results" main_cpu="$cpu_file" main_batch="$batch_file"
results="$work/pairs.tsv" cpu_file="$work/pairs-cpu.tsv" batch_file="$work/pairs-batch.tsv"
: >"$results"
: >"$cpu_file"
: >"$batch_file"
main_duration="$DURATION" main_duration_s="$duration_s"
DURATION="$RULES_DURATION"
duration_s="$(sed -n 's/^\([0-9][0-9]*\)s$/\1/p' <<<"$DURATION")"
if [[ -z "$duration_s" ]]; then
	echo "bench: BENCH_RULES_DURATION must be whole seconds such as 5s" >&2
	exit 1
fi
if [[ "$RULES_PAIRS" -gt 0 ]]; then
	echo "==> rules vs no rules: $RULES_PAIRS windows of $DURATION each per ledger, alternating A B B A"
	for backend in pg sqlite; do
		pg_settle
		for w in $(seq 1 "$RULES_PAIRS"); do
			if ((w % 2)); then
				scenario "spend-$backend-key/worker" "$backend" post each
				scenario "spend-$backend-key/worker-rules" "$backend" post each-rules
			else
				scenario "spend-$backend-key/worker-rules" "$backend" post each-rules
				scenario "spend-$backend-key/worker" "$backend" post each
			fi
		done
	done
fi
pairs_results="$results" pairs_cpu="$cpu_file"
DURATION="$main_duration" duration_s="$main_duration_s"
results="$main_results" cpu_file="$main_cpu" batch_file="$main_batch"

if [[ -n "${BENCH_RESULTS:-}" ]]; then
	cp "$results" "$BENCH_RESULTS"
	[[ -s "$pairs_results" ]] && cp "$pairs_results" "${BENCH_RESULTS%.tsv}-rules.tsv"
fi

# --- the table -------------------------------------------------------------
# Each row is compared with the mean of the plain runs of the same method
# (GET for zero-cost, POST for spend) at the same concurrency.
echo
echo "Keybrake vs plain reverse_proxy — $(nproc) CPUs, ${DURATION} per scenario, one run"
echo "(ratio and +p50 against the mean of the plain runs of the same method and concurrency;"
echo " @c1 = 1 connection, else ${CONNS}; Caddy logs at WARN unless marked INFO)"
echo
awk -F'\t' '
	function group(s,   g) {
		g = (s ~ /@c1$/) ? "c1" : "cN"
		return ((s ~ /^plain-get|^zero-cost/) ? "get" : "post") "/" g
	}
	{ name[NR] = $1; err[NR] = $3; rps[NR] = $5; p50[NR] = $6; p90[NR] = $7; p99[NR] = $8 }
	$1 ~ /^plain-/ { g = group($1); br[g] += $5; b50[g] += $6; bn[g]++ }
	END {
		for (g in bn) { br[g] /= bn[g]; b50[g] /= bn[g] }
		printf "%-30s %9s %7s %7s %9s %9s %9s %9s\n", "scenario", "req/s", "errors", "ratio", "p50 ms", "+p50 ms", "p90 ms", "p99 ms"
		printf "%-30s %9s %7s %7s %9s %9s %9s %9s\n", "--------", "-----", "------", "-----", "------", "-------", "------", "------"
		for (i = 1; i <= NR; i++) {
			g = group(name[i])
			ratio = (br[g] > 0) ? sprintf("%.2f", rps[i] / br[g]) : "-"
			added = (g in bn) ? sprintf("%+.2f", p50[i] - b50[g]) : "-"
			if (name[i] ~ /^plain-/) { ratio = "(" ratio ")"; added = "" }
			printf "%-30s %9.0f %7d %7s %9.2f %9s %9.2f %9.2f\n", name[i], rps[i], err[i], ratio, p50[i], added, p90[i], p99[i]
		}
	}' "$results"
echo
echo "Where the CPU went in each measured window: CPU ms per request by process; machine"
echo "busy / iowait / steal in % of all $(nproc) CPUs; other% = busy time not charged to these"
echo "processes: the kernel's softirq work for loopback TCP, and anything else running on the machine"
echo
paste "$results" "$cpu_file" | awk -F'\t' -v ncpu="$(nproc)" '
	BEGIN {
		printf "%-30s %8s %8s %8s %8s %7s %7s %7s %7s\n", "scenario", "caddy", "postgres", "upstream", "load", "busy%", "other%", "iowait%", "steal%"
		printf "%-30s %8s %8s %8s %8s %7s %7s %7s %7s\n", "--------", "-----", "--------", "--------", "----", "-----", "------", "-------", "------"
	}
	{
		n = ($2 > 0) ? $2 : 1
		ours = 100 * ($10 + $12 + $13 + $14) / ($4 * ncpu)
		printf "%-30s %8.3f %8.3f %8.3f %8.3f %7d %7.0f %7d %7d\n", $1, 1000*$12/n, 1000*$14/n, 1000*$13/n, 1000*$10/n, $15, $15 - ours, $16, $17
	}'
echo
echo "The ledger's group commit in each measured window: transactions (batches), reservations and"
echo "settlements written, ops per transaction, and commits per call answered"
echo
paste "$results" "$batch_file" | awk -F'\t' '
	BEGIN {
		printf "%-30s %9s %9s %9s %9s %12s\n", "scenario", "batches", "reserves", "finishes", "ops/batch", "commits/call"
		printf "%-30s %9s %9s %9s %9s %12s\n", "--------", "-------", "--------", "--------", "---------", "------------"
	}
	$1 !~ /^plain-/ {
		n = ($2 > 0) ? $2 : 1
		per = ($12 > 0) ? sprintf("%.1f", ($13 + $14) / $12) : "-"
		printf "%-30s %9d %9d %9d %9s %12.3f\n", $1, $12, $13, $14, per, $12 / n
	}'
if [[ -s "$pairs_results" ]]; then
	echo
	echo "Spend with rules vs without, key per worker, alternating ${RULES_DURATION} windows (A B B A ...): mean"
	echo "req/s of each and their ratio (target, issue 18: >= 0.90), the lowest and highest ratio of"
	echo "two adjacent windows, and CPU ms per request of Caddy and Postgres"
	echo
	paste "$pairs_results" "$pairs_cpu" | awk -F'\t' '
		{
			b = ($1 ~ /-pg-/) ? "postgres" : "sqlite"; r = ($1 ~ /-rules$/) ? "rules" : "none"
			n[b, r]++; rps[b, r] += $5; ok[b, r] += $2; caddy[b, r] += $12; pg[b, r] += $14; seen[b] = 1
			# Windows come in adjacent pairs (A B, B A, ...): the ratio of each.
			if (n[b, r] == n[b, (r == "rules") ? "none" : "rules"]) {
				x = (r == "rules") ? $5 / last : last / $5
				if (!(b in lo) || x < lo[b]) lo[b] = x
				if (!(b in hi) || x > hi[b]) hi[b] = x
			}
			last = $5
		}
		END {
			printf "%-10s %7s %11s %11s %7s %11s %11s %11s %11s %11s\n", "ledger", "windows", "req/s none", "req/s rules", "ratio", "pairs", "caddy none", "caddy rules", "pg none", "pg rules"
			printf "%-10s %7s %11s %11s %7s %11s %11s %11s %11s %11s\n", "------", "-------", "----------", "-----------", "-----", "-----", "----------", "-----------", "-------", "--------"
			for (b in seen) {
				a = rps[b, "none"] / n[b, "none"]; c = rps[b, "rules"] / n[b, "rules"]
				printf "%-10s %7d %11.0f %11.0f %7.2f %11s %11.3f %11.3f %11.3f %11.3f\n", b, n[b, "none"], a, c, (a > 0) ? c / a : 0,
					sprintf("%.2f-%.2f", lo[b], hi[b]),
					1000 * caddy[b, "none"] / ok[b, "none"], 1000 * caddy[b, "rules"] / ok[b, "rules"],
					1000 * pg[b, "none"] / ok[b, "none"], 1000 * pg[b, "rules"] / ok[b, "rules"]
			}
		}'
fi
echo
echo "Targets (DESIGN.md, Speed): zero-cost >= 0.90x plain; spend on Postgres >= 0.50x plain; added p50 of a spend call < 1 ms."
