#!/usr/bin/env bash
# Every test, on a fresh Debian machine or a prepared one: installs what is
# missing, starts PostgreSQL and the broker if they are not running, then
# format and lint checks, unit and integration tests (real binaries, real
# PostgreSQL, real broker) and the Helm chart's offline tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh

ensure_build_deps
ensure_postgres
ensure_broker
apt_install_missing chromium   # the dashboard's browser test

started=$(date +%s)
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build"
# The integration tests start the real binaries, so all of them are built first.
cargo build --workspace --all-targets --locked
echo "== cargo test"
cargo test --workspace --locked -- --nocapture 2>&1 | tee target/cargo-test.log | grep -Ev '^\s*$'
echo "== helm chart"
helm/tests/run.sh -q
echo "== dashboard (headless Chromium)"
dashboard/tests/run.sh
echo "== all tests passed in $(( $(date +%s) - started ))s"
