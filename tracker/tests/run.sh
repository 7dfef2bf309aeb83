#!/usr/bin/env bash
# The tracker's tests: tracker/dist/script.js is what `npm run build` makes
# of src/ (and within its size limit, printed), then the browser test of
# our tracker and of Plausible's published one against the real api binary
# (embedded mode) in headless Chromium. Builds no Rust: uses analytics-api
# from ${ANALYTICS_BIN_DIR:-target/debug} (the api embeds dist/: build it
# after changing the tracker).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
echo "== tracker/dist matches a fresh build"
node build.mjs --check
echo "== tracker browser test"
root=$(cd .. && pwd)
bin_dir="${ANALYTICS_BIN_DIR:-target/debug}"
[[ "$bin_dir" = /* ]] || bin_dir="$root/$bin_dir"
export ANALYTICS_API_BIN="$bin_dir/analytics-api"
export TRACKER_LOG_DIR="$root/target/tracker-test"
node tests/browser.mjs
