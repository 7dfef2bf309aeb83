#!/usr/bin/env bash
# A short fuzz run for CI: every cargo-fuzz target in fuzz/ for
# FUZZ_SECONDS (default 20) each, starting from the committed corpus, under
# the same limits as the long runs (fuzz/README.md). Fails if any target
# crashes, panics (a broken oracle), times out or runs out of memory; the
# input that did it is left in fuzz/artifacts/<target>/ (git-ignored) and
# the end of the target's log is printed.
#
# The committed corpus is only read: new inputs go to a scratch directory.
# Build output goes to $FUZZ_TARGET_DIR, else $CARGO_TARGET_DIR/fuzz, else
# fuzz/target. Needs a nightly toolchain (installed if missing) and
# cargo-fuzz (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
targets=(event_json body_decode kafka_payload path_pack user_set plausible_event)
declare -A max_len=([event_json]=70000 [body_decode]=65536 [kafka_payload]=70000 [path_pack]=65536 [user_set]=65536 [plausible_event]=70000)
declare -A dict=([event_json]=fuzz/dict/event.dict [kafka_payload]=fuzz/dict/event.dict [plausible_event]=fuzz/dict/plausible.dict)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "== installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}}"
target_dir_args=()
[[ -n "$target_dir" ]] && target_dir_args=(--target-dir "$target_dir")

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

started=$(date +%s)
# cargo-fuzz has no --locked: fail here if fuzz/Cargo.lock is stale.
cargo +nightly metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
echo "== cargo fuzz build (all targets)"
cargo +nightly fuzz build "${target_dir_args[@]}"
echo "== built in $(($(date +%s) - started))s"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  args=(-max_total_time="$seconds" -max_len="${max_len[$t]}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
  [[ -n "${dict[$t]:-}" ]] && args+=(-dict="${dict[$t]}")
  log="$scratch/$t.log"
  # The first corpus directory receives new inputs; the committed one is read only.
  if cargo +nightly fuzz run "${target_dir_args[@]}" "$t" "$scratch/$t" "fuzz/corpus/$t" -- "${args[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "== $t: ok, ${runs:-?} runs, ${speed:-?} exec/s"
  else
    echo "== $t: FAILED (input in fuzz/artifacts/$t/); the end of its log:"
    tail -n 60 "$log"
    failed+=("$t")
  fi
done

echo "== fuzz smoke done in $(($(date +%s) - started))s"
if ((${#failed[@]})); then
  echo "fuzz targets failed: ${failed[*]}" >&2
  exit 1
fi
