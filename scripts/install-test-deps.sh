#!/usr/bin/env bash
# Installs what the real-client tests need and this machine lacks: Debian's telnet, expect and
# chromium, Node.js, and playwright-core (which drives that chromium; it downloads no browser), and
# Debian's redis-server for the cluster tests (each test starts a redis-server of its own on a
# free loopback port; the packaged service, if the install starts one, is not used).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
need=()
command -v telnet >/dev/null || need+=(telnet)
command -v expect >/dev/null || need+=(expect)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v redis-server >/dev/null || need+=(redis-server)
if ((${#need[@]})); then
    echo "installing ${need[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi

if [ ! -d tests/e2e/node_modules/playwright-core ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund)
fi
