# bench-lib.sh is sourced by scripts/bench.sh and scripts/bench-scale.sh:
# their work directory (removed on exit), the processes they start (pids:
# killed on exit), a throwaway Postgres (pg_dir: stopped on exit), and two
# helpers. BENCH_NAME names the script in messages.
#
# proc_ticks sums utime+stime (clock ticks) of the given pids; pg_ticks is
# the throwaway Postgres's CPU so far (0 when an outside one is used).
work="$(mktemp -d /tmp/keybrake-$BENCH_NAME.XXXXXX)"
chmod 755 "$work"
pids=()
pg_dir=""

cleanup() {
	local code=$?
	local pid
	for pid in "${pids[@]:-}"; do
		[[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]:-}"; do
		[[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
	done
	if [[ -n "$pg_dir" ]]; then
		scripts/pg-stop.sh "$pg_dir" >/dev/null 2>&1 || true
	fi
	if [[ "$code" -ne 0 ]]; then
		echo "$BENCH_NAME: failed (exit $code); logs were in $work:" >&2
		for f in "$work"/*.log; do
			[[ -f "$f" ]] || continue
			echo "--- $(basename "$f") (last lines)" >&2
			tail -n 15 "$f" >&2 || true
		done
	fi
	rm -rf "$work"
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

wait_http() { # URL: wait until anything answers
	local i
	for i in $(seq 1 200); do
		if curl -s -o /dev/null --max-time 1 "$1"; then
			return 0
		fi
		sleep 0.1
	done
	echo "$BENCH_NAME: nothing answers at $1" >&2
	return 1
}

proc_ticks() {
	local files=() pid
	for pid in "$@"; do
		[[ -r "/proc/$pid/stat" ]] && files+=("/proc/$pid/stat")
	done
	if [[ ${#files[@]} -eq 0 ]]; then
		echo 0
		return
	fi
	# A process may exit between the test and the read: cat skips it.
	cat "${files[@]}" 2>/dev/null | awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }' || true
}
# pg_ticks: the throwaway Postgres's CPU so far: the postmaster's own and
# reaped children's (cutime+cstime), plus its live children's. Backends that
# exit move from the second sum to the first, so the total only grows.
pg_ticks() {
	if [[ -z "$pg_dir" || ! -r "$pg_dir/data/postmaster.pid" ]]; then
		echo 0
		return
	fi
	local pm own kids
	pm="$(head -n1 "$pg_dir/data/postmaster.pid")"
	own="$(cat "/proc/$pm/stat" 2>/dev/null | awk '{ sub(/^.*\) /, ""); t += $12 + $13 + $14 + $15 } END { print t + 0 }' || true)"
	# shellcheck disable=SC2046
	kids="$(proc_ticks $(pgrep -P "$pm"))"
	echo $((own + kids))
}
