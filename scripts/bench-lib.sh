# bench-lib.sh is sourced by scripts/bench.sh and scripts/bench-scale.sh:
# their work directory (removed on exit), the processes they start (pids:
# killed on exit), a throwaway Postgres (pg_dir: stopped on exit), and two
# helpers. BENCH_NAME names the script in messages.
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

