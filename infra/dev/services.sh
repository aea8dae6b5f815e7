#!/usr/bin/env bash
# Starts Redis, PostgreSQL and Mosquitto on loopback when they are not running, installing them
# from Debian's packages when missing. Idempotent: safe to call from `make dev`, `make test` and CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
command -v mosquitto >/dev/null || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null || need_apt+=(mosquitto-clients)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "services: installing ${need_apt[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 100); do port_open "$1" && return 0; sleep 0.1; done
  echo "services: $2 did not open port $1" >&2; return 1
}

if ! port_open 6379; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 Redis
fi

# The dev/test DATABASE_URL (postgres://postgres@127.0.0.1:5432/…) has no password. Debian's stock
# pg_hba.conf asks for one on TCP, so on such a cluster the postgres role alone gets password-less
# loopback logins (a marked block at the top of pg_hba.conf, added once).
PG_HBA_MARK='# iotsupport-realtime dev: password-less loopback logins for the postgres role'
allow_loopback_logins() { # <pg_hba.conf> <version> <cluster> <port>
  if PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$4" -U postgres -d postgres -w -tAc 'select 1' >/dev/null 2>&1; then return 0; fi
  grep -qF "$PG_HBA_MARK" "$1" && return 0
  echo "services: PostgreSQL asks for a password on loopback; allowing the postgres role without one ($1)"
  { echo "$PG_HBA_MARK"; echo 'host all postgres 127.0.0.1/32 trust'; echo 'host all postgres ::1/128 trust'; cat "$1"; } > "$1.new"
  cat "$1.new" > "$1" && rm -f "$1.new"
  pg_ctlcluster --skip-systemctl-redirect "$2" "$3" reload
}

pg_version="$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)"
if ! port_open 5432; then
  echo "services: starting PostgreSQL"
  if [ -z "$pg_version" ]; then echo "services: no PostgreSQL cluster found" >&2; exit 1; fi
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  wait_port 5432 PostgreSQL
fi
if [ -n "$pg_version" ] && [ -f "/etc/postgresql/$pg_version/main/pg_hba.conf" ]; then
  allow_loopback_logins "/etc/postgresql/$pg_version/main/pg_hba.conf" "$pg_version" main 5432
fi

if ! port_open 1883; then
  echo "services: starting Mosquitto with infra/mosquitto/mosquitto.conf"
  mkdir -p /var/lib/mosquitto /var/log/mosquitto
  chown mosquitto: /var/lib/mosquitto 2>/dev/null || true
  conf="$root/infra/mosquitto/mosquitto.conf"
  mosquitto -d -c "$conf" 2>/dev/null || mosquitto -d -c "$conf"
  wait_port 1883 Mosquitto
fi
echo "services: Redis :6379, PostgreSQL :5432, Mosquitto :1883 are up"
