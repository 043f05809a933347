#!/usr/bin/env bash
# The test command: installs any missing test dependency, then runs every test (unit, property,
# integration with real processes, and real telnet and Chromium clients).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --locked "$@"
