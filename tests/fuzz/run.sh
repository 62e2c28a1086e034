#!/usr/bin/env bash
# run.sh TARGET_BINARY SEED_DIR WORK_DIR SECONDS - runs one libFuzzer target
# for a bounded time from the seed corpus; new inputs go to WORK_DIR, never
# into the source tree. Exits non-zero when the fuzzer finds a crash or leak.
set -euo pipefail
bin=$1 seeds=$2 work=$3 secs=$4
mkdir -p "$work"
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$work/" -print_final_stats=1 "$work" "$seeds"
