#!/usr/bin/env bash
# Runs the whole platform in one process (embedded mode: SQLite file
# analytics.db, no Kafka, no PostgreSQL) on http://localhost:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh
ensure_build_deps
# Fewer glibc malloc arenas: less RSS for the same work (see Dockerfile).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec cargo run --release --locked -p api --bin analytics-api -- "$@"
