#!/usr/bin/env bash
# Runs every benchmark scenario on a release build and writes BENCHMARKS.md (figures, targets,
# ratios against the in-process baseline). Not part of the tests. Extra arguments go to chat-bench,
# e.g. `scripts/bench.sh --only fanout,latency` or `--idle 5000` for a quicker run.
#
# Before and after: to show an older commit's figures beside this one's, measure the older
# chat-supervisor with this chat-bench (the same load generator for both), then pass its JSON:
#   git worktree add ../chat-old OLD_COMMIT
#   (cd ../chat-old && cargo build --release --bins)
#   cargo build --release -p chat-bench
#   target/release/chat-bench --supervisor ../chat-old/target/release/chat-supervisor \
#       --commit OLD_COMMIT > before.json
#   scripts/bench.sh --before before.json
# The report then has a "before" column beside "measured" ("-" where before.json lacks a figure).
# The older build must accept the keys chat-bench writes in its servers.toml (`input_rate`,
# `max_connections_per_ip`, `max_connections`).
set -euo pipefail
cd "$(dirname "$0")/.."

# The peer scenario runs Debian's ngircd on the fan-out and 1:1 workloads; it is installed here if
# missing (with apt-get, as root or through sudo). Without it the report says "ngircd not installed".
# Whether the arguments leave the peer scenario in (`--only` without `peer` leaves it out).
wants_peer=1
prev=""
for arg in "$@"; do
  only=""
  if [ "$prev" = "--only" ]; then only="$arg"; fi
  case "$arg" in --only=*) only="${arg#--only=}" ;; esac
  if [ -n "$only" ] && [[ ",$only," != *,peer,* ]]; then wants_peer=0; fi
  prev="$arg"
done

# The ngircd on PATH, or Debian's, which lives in /usr/sbin (not on every user's PATH).
find_ngircd() { command -v ngircd || { [ -x /usr/sbin/ngircd ] && echo /usr/sbin/ngircd; } || true; }
peer=()
if [ "$wants_peer" = 1 ]; then
  ngircd="$(find_ngircd)"
  if [ -z "$ngircd" ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo > /dev/null; then sudo="sudo"; fi
    if { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; } && command -v apt-get > /dev/null; then
      echo "installing ngircd, the peer in BENCHMARKS.md"
      { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ngircd > /dev/null; } || true
      ngircd="$(find_ngircd)"
    fi
    if [ -z "$ngircd" ]; then echo "ngircd could not be installed: the report goes without the peer" >&2; fi
  fi
  if [ -n "$ngircd" ]; then peer=(--ngircd "$ngircd"); fi
fi

# Two builds: one of the workspace would unify the features of shared dependencies, and
# chat-bench's tokio (with the multi-threaded runtime) would make a larger chat-supervisor than the
# one `cargo build --release` or `cargo run --release` makes, the one measured here.
cargo build --release --locked -p chat-bench
cargo build --release --locked
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit (with uncommitted changes)"; fi
target/release/chat-bench --report BENCHMARKS.md --commit "$commit" ${peer[@]+"${peer[@]}"} "$@" > target/bench.json
echo "wrote BENCHMARKS.md (raw figures in target/bench.json)"
