#!/usr/bin/env bash
# Runs every benchmark scenario on a release build and writes BENCHMARKS.md (figures, targets,
# ratios against the in-process baseline). Not part of the tests. Extra arguments go to chat-bench,
# e.g. `scripts/bench.sh --only fanout,latency` or `--idle 5000` for a quicker run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --bins
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
target/release/chat-bench --report BENCHMARKS.md --commit "$commit" "$@" > target/bench.json
echo "wrote BENCHMARKS.md (raw figures in target/bench.json)"
