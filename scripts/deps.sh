#!/usr/bin/env bash
# deps.sh - installs what cometbox needs from Debian's packages (and the
# browser tests' npm packages). Installs only what is missing; needs root
# for apt-get. Usage: scripts/deps.sh [run|test|bench]   (default: test)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-test}
build=(build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libexpat1-dev nettle-dev libxxhash-dev libwslay-dev libhiredis-dev python3 curl scdoc)
test_extra=(chromium php-cli php-curl php-xml php-mbstring phpunit php8.2-dev valgrind strace
            nginx-light libnginx-mod-nchan clang libclang-rt-14-dev libfaketime python3-websockets redis-server)
bench_extra=(nginx-light libnginx-mod-nchan gnuplot-nox iproute2 redis-server)
pkgs=("${build[@]}")
if [ "$what" = test ]; then
    pkgs+=("${test_extra[@]}")
elif [ "$what" = bench ]; then
    pkgs+=("${bench_extra[@]}")
fi
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
        echo "deps: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # nginx-light would start the system nginx on port 80; the bench runs its own
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$what" = test ]; then
    for dir in tests/browser clients/js; do
        if [ -f $dir/package-lock.json ] &&
           { [ ! -d $dir/node_modules ] || [ $dir/package-lock.json -nt $dir/node_modules ]; }; then
            echo "deps: npm ci in $dir"
            (cd $dir && npm ci --no-audit --no-fund --loglevel=error)
        fi
    done
fi
