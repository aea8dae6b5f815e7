#!/usr/bin/env bash
# Runs the whole system on this machine (the last step of `make dev`): api, ingest and worker plus
# the local SSE Gateway and Elasticsearch stand-ins, each with its output prefixed by its name.
# Ctrl-C or SIGTERM stops every process gracefully (they drain like a pod would) and waits for them.
# Expects `make build`, `make services`, `make migrate` and `make seed` to have run (`make dev` does).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

# ---- dev defaults (any of them can be overridden from the calling shell) ------------------------
export NODE_ENV="${NODE_ENV:-development}"
export LOG_LEVEL="${LOG_LEVEL:-info}"
export HOST="${HOST:-127.0.0.1}"
export ELASTICSEARCH_URL="${ELASTICSEARCH_URL:-http://127.0.0.1:9200}"
export SSE_GATEWAY_URL="${SSE_GATEWAY_URL:-http://127.0.0.1:3102}"
export SSE_CALLBACK_SECRET="${SSE_CALLBACK_SECRET:-dev-callback-secret}"
export SECRET_KEY="${SECRET_KEY:-dev-only-secret-key-do-not-use-in-production}"
# Nothing balances load in front of a laptop: stop at once on Ctrl-C instead of draining for 5 s.
export SHUTDOWN_DRAIN_SECONDS="${SHUTDOWN_DRAIN_SECONDS:-0}"
api_port="${API_PORT:-3101}"
api_internal_port="${INTERNAL_PORT:-3111}"
gateway_port="${SSE_GATEWAY_URL##*:}"
gateway_port="${gateway_port%%/*}"
es_port="${ELASTICSEARCH_URL##*:}"
es_port="${es_port%%/*}"
# PORT means something different to each app, so it is set per process below, never exported.
unset PORT

pids=()
names=()

# Prefixes every line of a process's output; ignores Ctrl-C so the last lines of a draining
# process are still printed (it ends when the process closes its output).
prefix() {
  trap '' INT TERM
  exec sed -u "s/^/$(printf '%-9s' "[$1]")/"
}

# start NAME ENTRY [VAR=value ...] -- runs `node ENTRY ARGS...` when ENTRY is built.
start() {
  local name="$1" entry="$2"
  shift 2
  local vars=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  if [ ! -f "$entry" ]; then
    echo "[run]    $name skipped: $entry is not built"
    return
  fi
  env "${vars[@]}" node "$entry" "$@" > >(prefix "$name") 2>&1 &
  pids+=("$!")
  names+=("$name")
}

stopping=0
stop() {
  [ "$stopping" = 1 ] && return
  stopping=1
  echo "[run]    stopping ${names[*]}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
}
trap stop INT TERM

start es packages/testkit/dist/src/cli.js -- es --port "$es_port"
# OIDC_ENABLED=true without an OIDC_ISSUER_URL: the Keycloak stand-in plays the identity provider
# (devices become its clients; docs/identity-provider.md). With OIDC_ISSUER_URL, a real Keycloak is used.
if [ "${OIDC_ENABLED:-false}" = true ] && [ -z "${OIDC_ISSUER_URL:-}" ]; then
  keycloak_port="${KEYCLOAK_STANDIN_PORT:-8080}"
  export OIDC_ISSUER_URL="http://127.0.0.1:${keycloak_port}/realms/test"
  export OIDC_AUDIENCE="${OIDC_AUDIENCE:-iotsupport-api}"
  export IDP_ADMIN_CLIENT_ID="${IDP_ADMIN_CLIENT_ID:-iotsupport-admin}"
  export IDP_ADMIN_CLIENT_SECRET="${IDP_ADMIN_CLIENT_SECRET:-dev-only-admin-secret}"
  start keycloak packages/testkit/dist/src/cli.js -- keycloak --port "$keycloak_port" --audience "$OIDC_AUDIENCE" \
    --admin-client-id "$IDP_ADMIN_CLIENT_ID" --admin-client-secret "$IDP_ADMIN_CLIENT_SECRET"
fi
start gateway packages/testkit/dist/src/cli.js -- gateway --port "$gateway_port" \
  --callback-url "http://127.0.0.1:${api_internal_port}/api/sse/callback?secret=${SSE_CALLBACK_SECRET}"
start api apps/api/dist/src/main.js PORT="$api_port" INTERNAL_PORT="$api_internal_port"
start ingest apps/ingest/dist/src/main.js PORT="${INGEST_PORT:-3121}"
start worker apps/worker/dist/src/main.js PORT="${WORKER_PORT:-3131}"

if [ ${#pids[@]} -eq 0 ]; then
  echo "[run]    nothing to run: build first (make build)" >&2
  exit 1
fi
echo "[run]    api http://127.0.0.1:${api_port}/api/devices · docs http://127.0.0.1:${api_port}/api/docs · health http://127.0.0.1:${api_internal_port}/health/readyz · Ctrl-C stops everything"

# Wait until every process has exited; say which one ended and how, so a crash is visible while
# the others keep running.
status=0
remaining=("${pids[@]}")
while [ ${#remaining[@]} -gt 0 ]; do
  finished=""
  wait -n -p finished "${remaining[@]}"
  code=$?
  if [ -z "${finished:-}" ]; then
    [ "$code" = 127 ] && break # nothing left to wait for
    continue                   # woken by a signal: the trap ran, keep waiting
  fi
  for i in "${!pids[@]}"; do
    [ "${pids[$i]}" = "$finished" ] && echo "[run]    ${names[$i]} exited with code $code"
  done
  [ "$code" != 0 ] && status=1
  next=()
  for pid in "${remaining[@]}"; do [ "$pid" != "$finished" ] && next+=("$pid"); done
  remaining=("${next[@]}")
done
exit "$status"
