#!/usr/bin/env bash
# The test command: installs any missing test dependency, then runs every test (unit, property,
# integration with real processes, and real telnet and Chromium clients), and ends with one line
# totalling every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
