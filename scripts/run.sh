#!/usr/bin/env bash
# run.sh - the README's run command: installs what is missing, builds, and
# starts cometboxd in the foreground with the sample config and the demo page.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"

admin=${COMETBOX_SOCKET:-/run/cometboxd.sock}
[ -w "$(dirname "$admin")" ] || admin=${TMPDIR:-/tmp}/cometboxd.sock
cat <<MSG

cometboxd is starting (Ctrl-C stops it):
  demo page:       http://127.0.0.1:1800/demo?queue=demo
  publish a message:
    curl -H 'Content-Type: application/xml' --data '<message queue="demo">Hello</message>' http://127.0.0.1:1802/publish
  admin socket:    $admin

MSG
exec build/cometboxd/cometboxd -c cometboxd.conf --demo on --admin-socket "$admin" "$@"
