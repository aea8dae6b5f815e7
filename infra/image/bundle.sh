#!/usr/bin/env bash
# Bundles deployables into self-contained folders: OUT/<app>/{package.json,dist/,node_modules/} with
# production dependencies only (no tests, no testkit, no TypeScript), runnable as
# `node dist/src/main.js` from anywhere. The Dockerfile beside this file calls it; CI runs it too
# (infra/test/bundles.test.ts boots each bundle from a temporary folder outside the workspace).
#
#   bash infra/image/bundle.sh OUT [api|ingest|worker ...]     (default: all three)
#
# Expects a built workspace (`pnpm run build`). Uses `pnpm deploy --prod --legacy`: pnpm 10's
# default deploy requires `inject-workspace-packages`, which would make every workspace package a
# copy instead of a link during development; `--legacy` keeps development as it is.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# -ge 1 ] || { echo "usage: bundle.sh OUT [api|ingest|worker ...]" >&2; exit 64; }
out="$(realpath -m "$1")"
shift
apps=("$@")
[ ${#apps[@]} -gt 0 ] || apps=(api ingest worker)

for app in "${apps[@]}"; do
  [ -f "$root/apps/$app/dist/src/main.js" ] || { echo "bundle: apps/$app is not built (pnpm run build)" >&2; exit 1; }
  dest="$out/$app"
  rm -rf "$dest"
  pnpm --dir "$root" --filter "@iotsupport/$app" deploy --prod --legacy --reporter=silent "$dest"
  # What a package carries for development only: its tests (compiled too), TypeScript project files.
  while IFS= read -r pkg; do
    rm -rf "$pkg/test" "$pkg/dist/test" "$pkg/tsconfig.json" "$pkg/dist/.tsbuildinfo"
  done < <(printf '%s\n' "$dest"; find "$dest/node_modules/.pnpm" -mindepth 4 -maxdepth 4 -type d -path '*/node_modules/@iotsupport/*')
  if find "$dest/node_modules" -maxdepth 3 -type d \( -name '*testkit*' -o -name 'tap' -o -name 'typescript' \) | grep -q .; then
    echo "bundle: $app still holds development packages" >&2
    exit 1
  fi
  echo "bundle: $app -> $dest ($(du -sh "$dest" | cut -f1))"
done
