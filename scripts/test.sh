#!/usr/bin/env bash
# test.sh - the README's test command: installs what is missing, builds with
# AddressSanitizer+UBSan (and a ThreadSanitizer build for the concurrency
# tests), and runs every test through CTest. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

scripts/deps.sh test

echo "== ThreadSanitizer build (build-tsan)"
cmake -S . -B build-tsan -DSANITIZE=thread -DWERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-tsan -j"$jobs" --target cometboxd cometboxctl test_qmap

echo "== libFuzzer build (build-fuzz, clang)"
CC=clang cmake -S . -B build-fuzz -DFUZZ=ON -DSANITIZE=address,undefined -DWERROR=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_pub_xml fuzz_pub_json fuzz_query fuzz_config fuzz_admin_line fuzz_journal fuzz_wsconn fuzz_mirror

echo "== AddressSanitizer+UBSan build (build-asan)"
cmake -S . -B build-asan -DSANITIZE=address,undefined -DWERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTSAN_BUILD="$root/build-tsan" -DFUZZ_BUILD="$root/build-fuzz" >/dev/null
cmake --build build-asan -j"$jobs"

echo "== tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan
exec ctest --output-on-failure --timeout 900
