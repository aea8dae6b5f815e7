#!/usr/bin/env bash
# Installs the pnpm pinned in package.json's packageManager. corepack's signature check fails
# against the registry reachable here, so npm installs it directly.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
want="$(node -p "require('$root/package.json').packageManager.split('@')[1]")"
have="$(pnpm --version 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  echo "pnpm: installing $want (found '${have:-none}')"
  npm install -g --no-fund --no-audit "pnpm@$want" >/dev/null
fi
