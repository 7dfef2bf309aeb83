#!/usr/bin/env bash
# The benchmark suite, in one command:
#
#   bench/run.sh                      # every scenario, full sizes (about 20 minutes on 2 cores, after the build)
#   bench/run.sh --quick              # scaled down, a smoke run (a few minutes)
#   bench/run.sh --only ingest,queries
#   bench/run.sh --only v2            # Stats API v2 queries beside ClickHouse (chdb) and the seed-style SQL
#   bench/run.sh --only engine        # the v2 queries evaluated in-process over site-00's columns (the engine alone)
#   bench/run.sh --only cold          # the dashboard's first load of site-00 on a fresh api, beside one question alone
#   bench/run.sh --only export        # a 5M-event export (NDJSON, CSV) with the api's RSS, beside psql COPY
#
# Installs what is missing and starts PostgreSQL and the Kafka-protocol broker
# (scripts/prerequisites.sh), chdb in a venv of its own (bench/chdb.sh), builds
# the release binaries (in $CARGO_TARGET_DIR when set, else target/), then runs
# `analytics-bench all`; arguments are passed through (`--help` lists them).
# Results: bench/results/results.{json,md,png}; service logs: <target>/bench-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh
# shellcheck source=bench/chdb.sh
source bench/chdb.sh

ensure_build_deps
ensure_postgres
ensure_broker
ensure_geoip_db   # the enrichment scenario's country lookups
apt_install_missing fonts-dejavu-core   # the text of the plots
if [[ " $* " == *v2* ]]; then
  ensure_chdb     # exports BENCH_CHDB_PYTHON
fi

cargo build --release --locked -p api -p processor -p migration -p analytics-bench
exec "${CARGO_TARGET_DIR:-target}/release/analytics-bench" all --out bench/results "$@"
