#!/usr/bin/env bash
# `make bench`: every benchmark under bench/, one after the other. They print numbers and assert
# nothing; each starts what it needs (processes, stand-ins, a private Mosquitto) and stops it.
# Expects `make build` and `make services` (Redis, PostgreSQL, Mosquitto on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== bench/ingest: MQTT -> ingest -> Elasticsearch stand-in + Redis, next to raw Mosquitto QoS 1"
node bench/dist/ingest/ingest-throughput.js
echo
echo "== bench/forward: MQTT -> ingest -> api pods -> SSE Gateway stand-in -> SSE clients"
node bench/dist/forward/forward-bench.js
echo
echo "== bench/log-stream: Redis bytes per retained line of a device stream"
node bench/dist/log-stream/stream-memory.js
echo
echo "== bench/live-client: kill -9 of the owning api pod, lines lost / repeated as the client module sees them"
node bench/dist/live-client/takeover-bench.js
