#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests:
# starts the installed cluster if it is stopped, installs PostgreSQL from
# Debian's packages if it is missing, then creates a throw-away database
# for this run and prints its URL on stdout (for CAREFLOW_TEST_POSTGRES_URL).
# Progress goes to stderr.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
ADMIN_URL="postgres://postgres@$HOST:$PORT/postgres?sslmode=disable"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
	echo "postgres: installing PostgreSQL" >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

if ! ready; then
	version=$(ls /etc/postgresql | sort -V | tail -n 1)
	echo "postgres: starting cluster $version/main" >&2
	as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
	for _ in $(seq 1 60); do ready && break; sleep 0.5; done
fi
ready || { echo "postgres: no server on $HOST:$PORT" >&2; exit 1; }

# The tests connect over TCP as postgres without a password (trust on
# loopback, as Debian's test setups and this machine have it).
if ! psql "$ADMIN_URL" -qAtc 'SELECT 1' >/dev/null 2>&1; then
	echo "postgres: cannot connect as postgres over TCP; allowing trust on loopback" >&2
	hba=$(as_root su postgres -c "psql -qAtc 'SHOW hba_file'")
	as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
	as_root su postgres -c "psql -qAtc 'SELECT pg_reload_conf()'" >/dev/null
	psql "$ADMIN_URL" -qAtc 'SELECT 1' >/dev/null
fi

db="careflow_ci_$(date +%s)_$$"
psql "$ADMIN_URL" -qAtc "CREATE DATABASE $db" >/dev/null
echo "postgres: created throw-away database $db" >&2
echo "postgres://postgres@$HOST:$PORT/$db?sslmode=disable"
