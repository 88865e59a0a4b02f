#!/usr/bin/env bash
# Installs everything a fresh machine lacks, builds the binary, checks formatting and types, and
# runs every test: unit, in-process HTTP, and end-to-end against the real registry, skopeo, the
# docker CLI and slapd. Ends with the line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/ensure-tools.sh

ensure_bun
ensure_test_peers
echo "==> bun install"
bun install --frozen-lockfile >/dev/null
echo "==> format and type checks"
bun x biome format . >/dev/null || { echo "formatting differs: run 'bun run format'" >&2; bun x biome format . 2>&1 | head -40; exit 1; }
bun x tsc --noEmit -p .
echo "==> build"
bun run build >/dev/null

mkdir -p .tmp
set +e
# 30 s per test unless a test sets its own: Bun's default of 5 s is too short for a loaded
# 2-core machine, and bunfig.toml's [test] timeout is ignored by Bun 1.4.5.
bun test --timeout 30000 "$@" 2>&1 | tee .tmp/test-output.txt
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^ *[0-9]+ pass$' .tmp/test-output.txt | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ *[0-9]+ fail$' .tmp/test-output.txt | tail -1 | grep -Eo '[0-9]+' || echo 0)
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi # a crash or a load error counts as a failure
skipped=$(grep -Eo "^ *[0-9]+ skip$" .tmp/test-output.txt | tail -1 | grep -Eo "[0-9]+" || echo 0)
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
