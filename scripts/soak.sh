#!/usr/bin/env bash
# Release check: the chaos test (tests/chaos.rs) for as long as asked, on an optimized build.
# Clients on three frontends chat while the kernel and the frontends are SIGKILLed at random;
# every round checks that nothing was lost, duplicated or reordered and that no name is listed
# twice. Usage: scripts/soak.sh [SECONDS]   (default 600). CHAOS_SEED=N replays a run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
CHAOS_SECONDS="$seconds" cargo test --release --locked --test chaos -- --nocapture
