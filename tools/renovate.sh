#!/usr/bin/env bash
# Installs the pinned Renovate CLI (tools/renovate/package.json + package-lock.json) from the npm
# registry into tools/renovate/node_modules, once, and prints the path of its `renovate` command.
# Install scripts are skipped: Renovate's only native dependency (re2) is optional and would
# download a prebuilt binary; without it Renovate uses JavaScript regular expressions.
set -euo pipefail
cd "$(dirname "$0")/renovate"
bin="$PWD/node_modules/.bin/renovate"
want=$(sed -n 's/.*"renovate": "\([0-9.]*\)".*/\1/p' package.json)
have=$(sed -n 's/^  "version": "\([0-9.]*\)".*/\1/p' node_modules/renovate/package.json 2>/dev/null || true)
if [ ! -x "$bin" ] || [ "$have" != "$want" ]; then
  command -v npm >/dev/null 2>&1 || { echo "tools/renovate.sh: npm not found; run tools/system-deps.sh" >&2; exit 1; }
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=15)?0:1)' \
    || { echo "tools/renovate.sh: Renovate $want needs node >= 20.15 (have $(node --version))" >&2; exit 1; }
  echo "tools/renovate.sh: installing renovate $want from the npm registry (once)" >&2
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi
echo "$bin"
