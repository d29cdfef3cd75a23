#!/usr/bin/env bash
# pg-start.sh [DIR] starts a throwaway PostgreSQL for Keybrake's tests and
# local development, listening on 127.0.0.1 only, with trust auth. It is never
# meant for production: anyone on this host can connect as postgres.
#
# PGPORT (default 55432) picks the port. DIR (default: a new mktemp dir) holds
# the data directory, the log and the unix socket. If a server already answers
# on that port the script only makes sure the keybrake database exists and
# prints the same lines again, so it is safe to run twice.
#
# Output, for eval or for a CI step's environment:
#   KEYBRAKE_TEST_PG_DSN=postgres://postgres@127.0.0.1:PORT/keybrake?sslmode=disable
#   KEYBRAKE_TEST_PG_DIR=DIR
set -euo pipefail

port="${PGPORT:-55432}"

find_bindir() {
	if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
		echo /usr/lib/postgresql/15/bin
		return
	fi
	if command -v pg_config >/dev/null 2>&1; then
		local d
		d="$(pg_config --bindir)"
		if [[ -x "$d/initdb" ]]; then
			echo "$d"
			return
		fi
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" ]]; then
			echo "$d"
			return
		fi
	done
	echo "pg-start: no PostgreSQL server binaries found (install postgresql)" >&2
	exit 1
}

bindir="$(find_bindir)"

# as_pg runs a command as the postgres system user when we are root, since
# initdb and postgres refuse to run as root.
as_pg() {
	if [[ "$(id -u)" -eq 0 ]]; then
		if command -v runuser >/dev/null 2>&1; then
			runuser -u postgres -- "$@"
		else
			su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
		fi
	else
		"$@"
	fi
}

dsn="postgres://postgres@127.0.0.1:${port}/keybrake?sslmode=disable"

ensure_db() {
	local exists
	exists="$("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = 'keybrake'")"
	if [[ "$exists" != "1" ]]; then
		"$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE keybrake" >/dev/null
	fi
}

# Already running on this port: report it rather than starting a second one.
if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
	ensure_db
	dir="$("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "SHOW data_directory" 2>/dev/null || true)"
	echo "KEYBRAKE_TEST_PG_DSN=${dsn}"
	echo "KEYBRAKE_TEST_PG_DIR=$(dirname "${dir:-unknown/x}")"
	exit 0
fi

dir="${1:-}"
if [[ -z "$dir" ]]; then
	dir="$(mktemp -d /tmp/keybrake-pg.XXXXXX)"
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
data="$dir/data"
if [[ "$(id -u)" -eq 0 ]]; then
	chown postgres: "$dir"
	chmod 700 "$dir"
fi

if [[ ! -f "$data/PG_VERSION" ]]; then
	as_pg "$bindir/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
fi

# listen_addresses keeps it on loopback; the socket lives in DIR so it never
# collides with a system PostgreSQL in /var/run/postgresql.
as_pg "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories='${dir}' -c max_connections=300" \
	start >/dev/null || {
	tail -n 50 "$dir/postgres.log" >&2 || true
	exit 1
}

ensure_db
echo "KEYBRAKE_TEST_PG_DSN=${dsn}"
echo "KEYBRAKE_TEST_PG_DIR=${dir}"
