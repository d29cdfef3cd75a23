#!/usr/bin/env bash
# pg-stop.sh DIR stops a PostgreSQL started by pg-start.sh DIR. The data is
# left in place; remove DIR to throw it away.
set -euo pipefail

dir="${1:?usage: pg-stop.sh DIR (the KEYBRAKE_TEST_PG_DIR printed by pg-start.sh)}"
data="$dir/data"
if [[ ! -f "$data/PG_VERSION" ]]; then
	echo "pg-stop: $data is not a PostgreSQL data directory" >&2
	exit 1
fi

bindir=""
for d in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
	if [[ -n "$d" && -x "$d/pg_ctl" ]]; then
		bindir="$d"
		break
	fi
done
if [[ -z "$bindir" ]]; then
	echo "pg-stop: no pg_ctl found" >&2
	exit 1
fi

as_pg() {
	if [[ "$(id -u)" -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Not running (even with a stale postmaster.pid) is fine: stopping is
# idempotent.
if ! as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
	exit 0
fi
as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
