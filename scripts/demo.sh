#!/usr/bin/env bash
# demo.sh — Keybrake's fan-out story, end to end, on loopback only.
#
# Starts stripe-mock and bin/caddy (Caddyfile.example, embedded ledger in a
# temporary directory), then runs examples/demo: a run's vault key capped at
# $1,000, 500 concurrent $20 PaymentIntents through stripe-go, exactly 50
# through and 450 stopped at the cap, the run's summary, revocation, and the
# next call refused. Exits with the demo's code; everything it started is
# stopped and the temporary directory removed on the way out.
#
# Run it with `make demo` (which builds bin/caddy first), or directly once
# bin/caddy exists. DEMO_TIMEOUT (seconds, default 180) bounds the demo
# program; start-up waits are bounded too.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

GO="${GO:-go}"
demo_timeout="${DEMO_TIMEOUT:-180}"
started_at=$(date +%s)

say() { printf '%s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

[[ -x bin/caddy ]] || die "bin/caddy is missing: run 'make build' (or 'make demo')"
command -v curl >/dev/null || die "curl is required"

tmpdir="$(mktemp -d "${TMPDIR:-/tmp}/keybrake-demo.XXXXXX")"
caddy_pid=""
mock_pid=""
status=1

stop() {
	local pid="$1"
	[[ -n "$pid" ]] || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$caddy_pid"
	stop "$mock_pid"
	if [[ $status -ne 0 || $rc -ne 0 ]]; then
		if [[ -s "$tmpdir/caddy.log" ]]; then
			printf '\n---- last lines of the Keybrake log (caddy.log) ----\n' >&2
			tail -n 40 "$tmpdir/caddy.log" >&2 || true
		fi
		if [[ -s "$tmpdir/stripe-mock.log" ]]; then
			say "---- last lines of stripe-mock's log ----" >&2
			tail -n 10 "$tmpdir/stripe-mock.log" >&2 || true
		fi
	fi
	rm -rf "$tmpdir"
	if [[ $rc -eq 0 ]]; then rc=$status; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port VAR sets VAR to a TCP port nothing uses on this host (no listener, no
# connection, not even in TIME-WAIT), below the kernel's ephemeral range so
# outgoing connections cannot take it meanwhile, and not handed out before
# in this run.
taken=" "
ephemeral_low="$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
((ephemeral_low > 11000)) || ephemeral_low=32768
port_in_use() {
	if command -v ss >/dev/null; then
		[[ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % (ephemeral_low - 10000)))
		[[ "$taken" == *" $p "* ]] && continue
		if ! port_in_use "$p"; then
			taken+="$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# wait_http URL SECONDS [CURL ARGS…] polls until URL answers any HTTP status.
wait_http() {
	local url="$1" secs="$2" pid="$3"
	shift 3
	local deadline=$(($(date +%s) + secs))
	while (($(date +%s) < deadline)); do
		kill -0 "$pid" 2>/dev/null || return 1
		if curl -s -o /dev/null --noproxy '*' --max-time 2 "$@" "$url"; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# stripe-mock: from PATH, then GOPATH/bin, else installed at a pinned version.
mock="$(command -v stripe-mock || true)"
if [[ -z "$mock" ]]; then
	gobin="$("$GO" env GOBIN)"
	[[ -n "$gobin" ]] || gobin="$("$GO" env GOPATH)/bin"
	mock="$gobin/stripe-mock"
	if [[ ! -x "$mock" ]]; then
		say "Installing stripe-mock v0.203.0…"
		timeout 300 "$GO" install github.com/stripe/stripe-mock@v0.203.0
	fi
fi

# Build the demo program first, so a compile error stops nothing half-started
# and the demo's own exit code is what this script exits with.
say "Building examples/demo…"
timeout 300 "$GO" build -o "$tmpdir/demo" ./examples/demo

api_token="demo$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# stripe-mock serves HTTP and HTTPS; both stay on loopback.
free_port mock_port
free_port mock_tls_port
"$mock" -http-addr "127.0.0.1:$mock_port" -https-addr "127.0.0.1:$mock_tls_port" >"$tmpdir/stripe-mock.log" 2>&1 &
mock_pid=$!
wait_http "http://127.0.0.1:$mock_port/v1/customers" 20 "$mock_pid" -u sk_test_demo: ||
	die "stripe-mock did not come up on 127.0.0.1:$mock_port"

# start_keybrake starts bin/caddy on fresh ports and waits (bounded) until
# the key API answers the token. Returns 2 if a port was taken meanwhile.
start_keybrake() {
	free_port listen_port
	KEYBRAKE_LISTEN=":$listen_port" \
		KEYBRAKE_ADMIN="unix/$tmpdir/admin.sock|0600" \
		KEYBRAKE_LEDGER="sqlite:$tmpdir/demo.db" \
		KEYBRAKE_API_TOKEN="$api_token" \
		STRIPE_SECRET_KEY="sk_test_demo" \
		STRIPE_API_BASE="http://127.0.0.1:$mock_port" \
		bin/caddy run --config Caddyfile.example --adapter caddyfile >>"$tmpdir/caddy.log" 2>&1 &
	caddy_pid=$!
	local deadline=$(($(date +%s) + 30))
	until [[ "$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 2 \
		-H "Authorization: Bearer $api_token" "http://127.0.0.1:$listen_port/vault/keys" 2>/dev/null || true)" == 200 ]]; do
		if ! kill -0 "$caddy_pid" 2>/dev/null; then
			caddy_pid=""
			grep -q 'address already in use' "$tmpdir/caddy.log" && return 2
			return 1
		fi
		(($(date +%s) < deadline)) || return 1
		sleep 0.2
	done
}

for attempt in 1 2 3; do
	rc=0
	start_keybrake || rc=$?
	((rc == 0)) && break
	((rc == 2 && attempt < 3)) || die "Keybrake (bin/caddy) did not start and answer on 127.0.0.1:$listen_port within 30s"
	say "A port was taken meanwhile; starting Keybrake again on other ports…"
	: >"$tmpdir/caddy.log"
done

say "Keybrake on http://127.0.0.1:$listen_port (embedded ledger), in front of stripe-mock on 127.0.0.1:$mock_port"

set +e
KEYBRAKE_URL="http://127.0.0.1:$listen_port" KEYBRAKE_API_TOKEN="$api_token" \
	timeout "$demo_timeout" "$tmpdir/demo"
status=$?
set -e
if [[ $status -eq 124 ]]; then
	say "demo: timed out after ${demo_timeout}s" >&2
fi
say "(demo.sh took $(($(date +%s) - started_at))s)"
