#!/usr/bin/env bash
# test.sh runs Keybrake's whole test suite: unit tests, the ledger contract
# suite on both backends, and the end-to-end tests (a real Caddy built with
# xcaddy, a real Postgres, stripe-mock and the official SDKs). It starts
# what it needs on loopback and stops it afterwards:
#
#   - Postgres: reuses KEYBRAKE_TEST_PG_DSN if set, else starts a throwaway
#     one with scripts/pg-start.sh (PostgreSQL server binaries must be
#     installed; .ci/run installs them on a fresh machine).
#   - stripe-mock: reuses KEYBRAKE_STRIPE_MOCK_URL if set, else runs the one
#     in PATH or GOPATH/bin, installing it with `go install` if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

STRIPE_MOCK_VERSION="${STRIPE_MOCK_VERSION:-v0.203.0}"
work="$(mktemp -d /tmp/keybrake-test.XXXXXX)"
chmod 755 "$work"
pids=()
pg_dir=""

cleanup() {
	local code=$?
	for pid in "${pids[@]:-}"; do
		[[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
	done
	if [[ -n "$pg_dir" ]]; then
		scripts/pg-stop.sh "$pg_dir" || true
	fi
	rm -rf "$work"
	exit "$code"
}
trap cleanup EXIT INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

if [[ -z "${KEYBRAKE_TEST_PG_DSN:-}" ]]; then
	echo "==> starting Postgres on loopback"
	out="$(PGPORT="$(free_port)" scripts/pg-start.sh "$work/pg")"
	pg_dir="$work/pg"
	KEYBRAKE_TEST_PG_DSN="$(sed -n 's/^KEYBRAKE_TEST_PG_DSN=//p' <<<"$out")"
	export KEYBRAKE_TEST_PG_DSN
fi
echo "    Postgres: ${KEYBRAKE_TEST_PG_DSN}"

if [[ -z "${KEYBRAKE_STRIPE_MOCK_URL:-}" ]]; then
	mock="$(command -v stripe-mock || true)"
	if [[ -z "$mock" ]]; then
		mock="$(go env GOPATH)/bin/stripe-mock"
		if [[ ! -x "$mock" ]]; then
			echo "==> installing stripe-mock ${STRIPE_MOCK_VERSION}"
			go install "github.com/stripe/stripe-mock@${STRIPE_MOCK_VERSION}"
		fi
	fi
	port="$(free_port)"
	echo "==> starting stripe-mock on 127.0.0.1:${port}"
	"$mock" -http-port "$port" -https-port "$(free_port)" >"$work/stripe-mock.log" 2>&1 &
	pids+=($!)
	export KEYBRAKE_STRIPE_MOCK_URL="http://127.0.0.1:${port}"
	for _ in $(seq 1 300); do
		if curl -fs -o /dev/null -H 'Authorization: Bearer sk_test_123' "$KEYBRAKE_STRIPE_MOCK_URL/v1/customers"; then
			break
		fi
		sleep 0.1
	done
fi
echo "    stripe-mock: ${KEYBRAKE_STRIPE_MOCK_URL}"

echo "==> building bin/caddy with xcaddy"
make --no-print-directory build >"$work/build.log" 2>&1 || {
	tail -n 40 "$work/build.log"
	exit 1
}

export KEYBRAKE_CADDY_BIN="$PWD/bin/caddy"
export KEYBRAKE_REQUIRE_E2E=1 KEYBRAKE_REQUIRE_PG=1

echo "==> npm ci: Twilio's SMS segment calculator, the oracle of integration/sms_segments_test.go"
command -v node >/dev/null 2>&1 || { echo "node is missing: the SMS segment oracle needs Node.js and npm"; exit 1; }
(cd integration/testdata/smssegments && npm ci --no-audit --no-fund --loglevel=error)

echo "==> go vet"
go vet ./...

echo "==> make run smoke test: the README's first command, embedded ledger"
run_port="$(free_port)"
KEYBRAKE_LISTEN=":${run_port}" KEYBRAKE_ADMIN="unix/${work}/run-admin.sock|0600" KEYBRAKE_LEDGER="sqlite:${work}/run.db" \
	KEYBRAKE_API_TOKEN=smoketoken scripts/run.sh >"$work/run.log" 2>&1 &
pids+=($!)
code=""
for _ in $(seq 1 100); do
	code="$(curl -s -o "$work/run-key.json" -w '%{http_code}' -X POST "http://127.0.0.1:${run_port}/vault/keys" \
		-H 'Authorization: Bearer smoketoken' \
		-d '{"vendor":"stripe","total_usd_cap":1,"allowed_endpoints":["POST /v1/payment_intents"]}' || true)"
	[[ "$code" == "201" ]] && break
	sleep 0.1
done
if [[ "$code" != "201" ]]; then
	echo "make run did not come up and issue a key (last status ${code})"
	tail -n 30 "$work/run.log"
	exit 1
fi
echo "    make run: up, issued a key on the embedded ledger"

echo "==> make demo"
scripts/demo.sh

if [[ -f examples/windmill/check.sh ]]; then
	echo "==> examples: the Windmill kit with windmill-cli, its parsers and the OpenFlow schema"
	bash examples/windmill/check.sh
fi

# The randomized cap model at full count runs without the race detector
# (which slows it tenfold); the race run below repeats a few hundred
# sequences with it on.
echo "==> randomized cap model: ${KEYBRAKE_CAP_SEQUENCES:-10000} sequences on the embedded ledger, a tenth on Postgres; the evidence family as many, batches a tenth, rules a fifth"
go test -count=1 -timeout 15m -run '^TestCapModel(Evidence|Batches|Rules)?$' -v ./integration/ >"$work/cap-model.log" 2>&1 || {
	grep -a -v '^\s*{' "$work/cap-model.log" | tail -n 60
	exit 1
}
grep -a -E '^(cap|evidence|batch|rules) model' "$work/cap-model.log"

# go test last, so its summary closes the run.
echo "==> go test (race detector on)"
KEYBRAKE_CAP_SEQUENCES=300 go test -race -count=1 -timeout 20m ./... 2>&1 | tee "$work/go-test.log"
status="${PIPESTATUS[0]}"
if [[ "$status" -ne 0 ]]; then
	exit "$status"
fi

