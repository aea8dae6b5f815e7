#!/usr/bin/env bash
# Runs every test file with tap, closes with one plain 'N passed, N failed' line, then fails the
# run if it left anything behind in Redis or PostgreSQL. Every name a test makes carries this
# run's TEST_RUN_ID (testkit uniqueId), so runs of other checkouts on the same services are not
# mistaken for leftovers of this one.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
TEST_RUN_ID="r$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
export TEST_RUN_ID
# The manifest tests (infra/test/k8s.test.ts) need kubectl kustomize.
bash infra/k8s/ensure-kubectl.sh
log="$(mktemp)"
pnpm exec tap "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary="$(grep -E '^# \{ total: [0-9]+' "$log" | tail -1)"
pass="$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")"
fail="$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")"
skip="$(sed -nE 's/.*skip: ([0-9]+).*/\1/p' <<<"$summary")"
rm -f "$log"
echo "tests: ${pass:-0} passed, ${fail:-0} failed${skip:+, $skip skipped}"
if ! node packages/testkit/dist/src/leftovers-cli.js "$TEST_RUN_ID"; then
  echo "tests left the Redis keys / databases above behind (run $TEST_RUN_ID): a test must delete what it creates"
  rc=1
else
  echo "leftovers: none (run $TEST_RUN_ID)"
fi
exit "$rc"
