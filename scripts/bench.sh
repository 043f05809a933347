#!/usr/bin/env bash
# Runs every benchmark scenario on a release build and writes BENCHMARKS.md (figures, targets,
# ratios against the in-process baseline). Not part of the tests. Extra arguments go to chat-bench,
# e.g. `scripts/bench.sh --only fanout,latency` or `--idle 5000` for a quicker run.
#
# Before and after: to show an older commit's figures beside this one's, measure the older
# chat-supervisor with this chat-bench (the same load generator for both), then pass its JSON:
#   git worktree add ../chat-old OLD_COMMIT
#   (cd ../chat-old && cargo build --release --bins)
#   cargo build --release --workspace --bins
#   target/release/chat-bench --supervisor ../chat-old/target/release/chat-supervisor \
#       --commit OLD_COMMIT > before.json
#   scripts/bench.sh --before before.json
# The report then has a "before" column beside "measured" ("-" where before.json lacks a figure).
# The older build must accept the keys chat-bench writes in its servers.toml (`input_rate`,
# `max_connections_per_ip`, `max_connections`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --bins
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
target/release/chat-bench --report BENCHMARKS.md --commit "$commit" "$@" > target/bench.json
echo "wrote BENCHMARKS.md (raw figures in target/bench.json)"
