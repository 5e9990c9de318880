#!/usr/bin/env bash
# Installs the validator from the committed lock file (npm ci, once per lock
# file) into WORK_DIR and validates the OpenAPI document with it.
# Usage: check.sh WORK_DIR OPENAPI_JSON
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$1
document=$2
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "openapi check: node and npm are needed (scripts/install-deps.sh installs them)" >&2
  exit 1
fi
mkdir -p "$work"
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$here/validate.mjs" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp "$here/validate.mjs" "$work/"
node "$work/validate.mjs" "$document"
