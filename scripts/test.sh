#!/usr/bin/env bash
# Every test, on a fresh Debian machine or a prepared one: installs what is
# missing, starts PostgreSQL and the broker if they are not running, then
# format and lint checks, the vendored patch check, unit and integration
# tests (the real router in-process, the real binaries, real PostgreSQL,
# real broker), a short run of every fuzz target, the Helm chart's offline
# tests, the dashboard's browser test, the trackers' browser test, and
# schemathesis checking the OpenAPI document against the running api.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh

ensure_build_deps
ensure_postgres
ensure_broker
ensure_geoip_db   # the country tests
apt_install_missing chromium   # the dashboard's browser test

# Build output lives outside the checkout (unless CARGO_TARGET_DIR says
# otherwise), so that every run on this machine, CI's clean checkouts
# included, reuses the compiled dependencies: README.md has both timings.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ANALYTICS_CACHE/target}"
export ANALYTICS_BIN_DIR="$CARGO_TARGET_DIR/debug"
mkdir -p "$CARGO_TARGET_DIR"

started=$(date +%s)
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== vendored patches"
scripts/check-patches.sh
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build"
# The end-to-end tests start the real binaries, so everything is built first.
cargo build --workspace --all-targets --locked
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --profile ci 2>&1 | tee "$CARGO_TARGET_DIR/tests.log"
else
  cargo test --workspace --locked 2>&1 | tee "$CARGO_TARGET_DIR/tests.log" | grep -Ev '^\s*$'
fi
echo "== fuzz smoke (every cargo-fuzz target, FUZZ_SECONDS each)"
scripts/fuzz-smoke.sh
echo "== helm chart"
helm/tests/run.sh -q
echo "== dashboard (headless Chromium)"
dashboard/tests/run.sh
echo "== trackers: ours and Plausible's (headless Chromium)"
tracker/tests/run.sh
echo "== schemathesis (both modes)"
scripts/schemathesis.sh
echo "== all tests passed in $(( $(date +%s) - started ))s"
