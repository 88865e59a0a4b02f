#!/usr/bin/env bash
# Builds regauth and runs it on the embedded default (127.0.0.1:5001, data in ./regauth-data).
# Extra arguments go to `regauth serve`, e.g. `bash scripts/run.sh --config auth_config.yml`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-tools.sh
ensure_bun
bun install --frozen-lockfile >/dev/null
bun run build >/dev/null
exec ./dist/regauth serve "$@"
