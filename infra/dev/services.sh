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

if ! port_open 5432; then
  echo "services: starting PostgreSQL"
  version="$(ls /etc/postgresql | sort -n | tail -1)"
  if [ -z "$version" ]; then echo "services: no PostgreSQL cluster found" >&2; exit 1; fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_port 5432 PostgreSQL
fi
# Trust auth on loopback is the machine's default; make sure the role we connect as exists.
if command -v psql >/dev/null && ! psql -h 127.0.0.1 -U postgres -tAc 'select 1' >/dev/null 2>&1; then
  su postgres -c "psql -tAc \"alter role postgres with password null\"" >/dev/null 2>&1 || true
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
