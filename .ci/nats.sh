#!/usr/bin/env bash
# Makes sure a NATS server with JetStream answers on 127.0.0.1:4222 for the
# event-bus tests (projections/bus): installs nats-server from Debian if it
# is missing, starts it if it is stopped, and waits until JetStream answers.
set -euo pipefail

HOST=127.0.0.1
PORT=${CAREFLOW_NATS_PORT:-4222}
BIN=/usr/sbin/nats-server
STORE=${CAREFLOW_NATS_STORE:-/var/lib/nats-server}
LOG=${CAREFLOW_NATS_LOG:-/var/log/nats-server.log}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

port_open() {
	{ (exec 3<>"/dev/tcp/$HOST/$PORT"); } 2>/dev/null
}

# jetstream_ok asks the JetStream API for account info over the raw NATS
# protocol (no client tool needed): a server without JetStream answers 503.
jetstream_ok() {
	local line
	{ exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null || return 1
	printf 'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\nSUB _INBOX.ci_nats 1\r\nPUB $JS.API.INFO _INBOX.ci_nats 0\r\n\r\nPING\r\n' >&3
	while IFS= read -r -t 3 line <&3; do
		case "$line" in
		*account_info_response*) exec 3>&-; return 0 ;;
		*' 503'* | *'-ERR'*) break ;;
		esac
	done
	exec 3>&-
	return 1
}

if jetstream_ok; then
	echo "nats: JetStream is reachable on $HOST:$PORT"
	exit 0
fi
if port_open; then
	echo "nats: something answers on $HOST:$PORT but JetStream does not; stop it or enable JetStream (-js)" >&2
	exit 1
fi

if [ ! -x "$BIN" ]; then
	echo "nats: installing nats-server"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
fi

echo "nats: starting $BIN with JetStream on $HOST:$PORT"
as_root mkdir -p "$STORE"
# The pid file is per port, so another nats-server elsewhere does not count
# as "already running".
as_root start-stop-daemon --start --oknodo --background --exec "$BIN" \
	--pidfile "/run/nats-server-$PORT.pid" --make-pidfile -- \
	-a "$HOST" -p "$PORT" -js -sd "$STORE" -l "$LOG"

for _ in $(seq 1 50); do
	if jetstream_ok; then
		echo "nats: JetStream is reachable on $HOST:$PORT"
		exit 0
	fi
	sleep 0.2
done
echo "nats: JetStream did not come up on $HOST:$PORT; last log lines:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
