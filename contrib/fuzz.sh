#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of fuzz/ (or those in FUZZ_TARGETS) for FUZZ_SECONDS
# each (default 60), one after the other in one process each, from its committed corpus
# fuzz/corpus/<target>/. The fuzzer works on a scratch copy of the corpus, so the tree
# stays clean; with FUZZ_MERGE=1 the inputs that reach new coverage are merged back into
# fuzz/corpus/<target>/ (libFuzzer -merge=1: only those that add features). A crash, hang
# (10 s) or out-of-memory (1 GiB) stops the run with the input in fuzz/artifacts/<target>/.
# FUZZ_RUNS=N also stops a target after N executions (libFuzzer -runs), whichever
# comes first. Ends with one line per target: executions, exec/s, coverage (cov, ft),
# corpus size. FUZZ_LOGS=dir keeps each target's libFuzzer output as dir/<target>.log.
# FUZZ_SANITIZER: cargo-fuzz's -s (default none: the code is safe Rust, and without
# AddressSanitizer the targets run 2-3 times faster; `address` finds what it finds in
# the standard library and the C of libFuzzer). Built with -O: optimised, with debug
# assertions and overflow checks in the service and its tiny_http only (fuzz/Cargo.toml's
# profile), so a run does not rebuild every dependency with them. See docs/FUZZING.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-$(ls fuzz_targets | sed 's/\.rs$//')}
# cargo-fuzz passes -Zsanitizer and friends to rustc; a stable toolchain takes them when
# told it is bootstrapping (a nightly toolchain does not need it, and ignores it).
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-none}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary="$scratch/summary"
: >"$summary"

for target in $targets; do
  [ -f "fuzz_targets/$target.rs" ] || { echo "no fuzz target $target (see fuzz/fuzz_targets/)" >&2; exit 2; }
  work="$scratch/corpus-$target"
  mkdir -p "$work"
  cp corpus/"$target"/* "$work"/
  # The request-head reader needs inputs past its 64 KiB head limit.
  case "$target" in
    http_head) max_len=100000 ;;
    snapshot | config | manifest | history) max_len=16384 ;;
    *) max_len=4096 ;;
  esac
  log="${FUZZ_LOGS:-$scratch}/$target.log"
  mkdir -p "$(dirname "$log")"
  echo "== $target: ${seconds}s from $(ls corpus/"$target" | wc -l) seeds" >&2
  status=0
  cargo fuzz run -O -s "$sanitizer" "$target" "$work" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=1024 \
    ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+INITED|^Done [0-9]+ runs' "$log" >&2 || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $target FAILED (exit $status); the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  if [ -n "${FUZZ_MERGE:-}" ]; then
    # Edges only (no hit counts, no value profile): a few inputs per new edge, not
    # hundreds per new feature, so the committed corpus stays small; of the inputs the
    # merge adds, those over 4 KiB are dropped again (hand-made seeds may be larger).
    ls corpus/"$target" >"$scratch/before"
    cargo fuzz run -O -s "$sanitizer" "$target" "corpus/$target" "$work" -- -merge=1 -max_len="$max_len" \
      -use_counters=0 -use_value_profile=0 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' >&2 || true
    ls corpus/"$target" | grep -vxF -f "$scratch/before" | while read -r added; do
      [ "$(stat -c %s "corpus/$target/$added")" -le 4096 ] || rm -f "corpus/$target/$added"
    done
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
  # The last status line (libFuzzer prints no DONE line when time runs out).
  done_line=$(grep -E '^#[0-9]+[[:space:]]+[A-Z]+[[:space:]]+cov:' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$done_line")
  printf '%-18s %12s execs %8s/s  cov %5s  ft %6s  corpus %s\n' \
    "$target" "$execs" "$rate" "$cov" "$ft" "$corp" >>"$summary"
done

echo "== fuzzing summary (${seconds}s${FUZZ_RUNS:+ or $FUZZ_RUNS runs} per target)"
cat "$summary"
