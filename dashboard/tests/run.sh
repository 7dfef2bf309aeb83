#!/usr/bin/env bash
# The dashboard's browser test: headless Chromium (Debian's package) driven by
# playwright-core against the real api binary in embedded mode, open on
# loopback and in keys mode (login, logout, shared links). Also checks that
# the committed dashboard/dist is what `npm run build` makes of the source.
# Then goals, funnels and downloads (tests/conversions.mjs), and the world
# map and the repeated DST hour (tests/map.mjs).
# Builds no Rust: uses analytics-api and analytics-admin from
# ${ANALYTICS_BIN_DIR:-target/debug} (the api embeds dist/: build it after
# changing the dashboard).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if ! command -v chromium >/dev/null; then
  echo "== installing chromium"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d dashboard/node_modules ]; then
  (cd dashboard && npm ci --no-audit --no-fund)
fi

echo "== dashboard/dist matches a fresh build"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
(cd dashboard && npx vite build --logLevel error --outDir "$fresh/dist" --emptyOutDir)
if ! diff -r dashboard/dist "$fresh/dist"; then
  echo "dashboard/dist is stale: run \`npm run build\` in dashboard/ and commit dist/" >&2
  exit 1
fi

echo "== browser test"
bin_dir="${ANALYTICS_BIN_DIR:-target/debug}"
[[ "$bin_dir" = /* ]] || bin_dir="$root/$bin_dir"
export ANALYTICS_API_BIN="$bin_dir/analytics-api"
export ANALYTICS_ADMIN_BIN="$bin_dir/analytics-admin"
export SCREENSHOT_DIR="$root/target/dashboard-screenshots"
node dashboard/tests/browser.mjs
echo "== goals, funnels and downloads"
node dashboard/tests/conversions.mjs
echo "== world map and the repeated DST hour"
node dashboard/tests/map.mjs
