#!/usr/bin/env bash
# run.sh - the README's run command: installs what is missing, builds, and
# starts cometboxd in the foreground with the sample config and the demo page.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh run
# Quiet build: its output goes to a log, shown only when it fails.
mkdir -p build
log=build/run-build.log
echo "run.sh: building (log: $log)"
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build build -j"$(nproc 2>/dev/null || echo 2)"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "run.sh: the build failed (output above, also in $log)" >&2
    exit 1
fi

admin=${COMETBOX_SOCKET:-/run/cometboxd.sock}
# The journal (docs/DURABILITY.md): messages outlive a restart. As in the
# systemd unit, /var/lib/cometboxd; a temporary folder when that is not ours.
state=${COMETBOX_STATE_DIR:-/var/lib/cometboxd}
mkdir -p "$state" 2>/dev/null && [ -w "$state" ] || state=${TMPDIR:-/tmp}/cometboxd-state
[ -w "$(dirname "$admin")" ] || admin=${TMPDIR:-/tmp}/cometboxd.sock
sq="'\\''"
admin_sh="'${admin//\'/$sq}'"   # quoted for a POSIX shell
cat <<MSG

cometboxd is starting (Ctrl-C stops it):
  demo page:       http://127.0.0.1:1800/demo?queue=demo
  publish a message:
    curl -H 'Content-Type: application/xml' --data '<message queue="demo">Hello</message>' http://127.0.0.1:1802/publish
    build/cometboxctl/cometboxctl -s $admin_sh publish 'demo' 'Hello'
  admin socket:    $admin
  messages kept in $state (journal; restart and they are still there)

MSG
exec build/cometboxd/cometboxd -c cometboxd.conf --demo on --admin-socket "$admin" --state-dir "$state" "$@"
