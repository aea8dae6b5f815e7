#!/usr/bin/env bash
# Runs every test file with tap and closes with one plain 'N passed, N failed' line.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
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
exit "$rc"
