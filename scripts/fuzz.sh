#!/usr/bin/env bash
# `make fuzz`: every fuzz target for FUZZ_SECS seconds (default 60) on stable Rust (no
# sanitizer: `-s none`), from the checked-in seed corpora (fuzz/corpus/<target>, made
# from the golden fixtures and the example configurations). Prints each target's
# executions and findings; exits non-zero if any target found a crash.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${FUZZ_SECS:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=$(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v '^xvs-fuzz$')
cargo fuzz build -s none --release >/dev/null || exit 1
failed=0
printf '%-16s %12s %10s %s\n' target executions exec/s findings
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # A scratch copy of the seeds: new inputs the run finds are not checked in.
  work=$(mktemp -d)
  cp -r "corpus/$t/." "$work/" 2>/dev/null
  log=$(mktemp)
  cargo fuzz run -s none --release "$t" "$work" -- -max_total_time="$secs" \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  found=$(find "artifacts/$t" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    failed=1
    grep -m5 -E "panicked|ERROR|SUMMARY" "$log" >&2
  fi
  printf '%-16s %12s %10s %s\n' "$t" "${runs:-?}" "${speed:-?}" "$found"
  rm -rf "$work" "$log"
done
exit $failed
