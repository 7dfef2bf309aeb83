#!/usr/bin/env bash
# Runs the whole platform in one process (embedded mode: SQLite file
# analytics.db, no Kafka, no PostgreSQL) on http://localhost:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh
ensure_build_deps
exec cargo run --release --locked -p api --bin analytics-api -- "$@"
