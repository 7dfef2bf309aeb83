#!/usr/bin/env bash
# The api's OpenAPI document (/openapi.json) checked against the running
# api by schemathesis, in both modes: embedded (SQLite) and distributed
# (api + processor, PostgreSQL, the Kafka-protocol broker). Every answer
# to the requests it generates from the document must be no 5xx, of a
# documented status and content type, and match its documented schema.
#
#   scripts/schemathesis.sh                # both modes
#   scripts/schemathesis.sh embedded       # or: kafka
#   SCHEMATHESIS_EXAMPLES=200 SCHEMATHESIS_SEED=42 scripts/schemathesis.sh
#
# Reads (and everything but /api/admin) are tested with a read key, the
# admin routes with an admin key; both modes need keys (READ_AUTH=keys).
# Ingest is open (INGEST_AUTH=open) in both, so that the events it makes
# up reach the sink (Kafka's too): for a site that is not registered,
# Kafka mode's default waits up to a second for the registry and answers
# 403, which would be most of the run. SCHEMATHESIS_ARGS adds options.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh

if (($#)); then modes=("$@"); else modes=(embedded kafka); fi
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-50}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ANALYTICS_CACHE/target}"
BIN_DIR="${ANALYTICS_BIN_DIR:-$CARGO_TARGET_DIR/debug}"

# schemathesis, from PyPI, in a venv of its own under the cache directory.
schemathesis_bin() {
  local venv="$ANALYTICS_CACHE/schemathesis-venv"
  if [[ ! -x "$venv/bin/schemathesis" ]]; then
    apt_install_missing python3-venv python3-pip >/dev/null 2>&1 || true
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
  fi
  echo "$venv/bin/schemathesis"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")
pids=()
databases=()
cleanup() {
  local pid db log
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for db in "${databases[@]}"; do dropdb -h 127.0.0.1 -U postgres --if-exists "$db" 2>/dev/null || true; done
  # The services' logs, kept for a look after a failure.
  for log in "$work"/*.log; do [[ -e $log ]] && cp "$log" "$ANALYTICS_CACHE/schemathesis-services-$(basename "$log")"; done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME ENV=VALUE…: a binary in the background, its log in $work.
start() {
  local name=$1
  shift
  env "$@" RUST_LOG=info "$BIN_DIR/$name" >"$work/$mode-$name.log" 2>&1 &
  pids+=("$!")
}

wait_ready() {
  local url=$1 log=$2
  for _ in $(seq 1 120); do
    curl -sf -o /dev/null "$url/readyz" && return 0
    sleep 0.5
  done
  echo "not ready: $url (log: $log)" >&2
  tail -n 30 "$log" >&2
  return 1
}

# JSON field of stdin.
field() { python3 -c "import json, sys; print(json.load(sys.stdin)[\"$1\"])"; }

# run_checks MODE BASE ENV…: bootstrap an admin key with analytics-admin
# (ENV: its DATABASE_URL), a site and a read key over HTTP, then
# schemathesis twice (read key: all but admin; admin key: admin).
run_checks() {
  local mode=$1 base=$2
  shift 2
  local admin read
  admin=$(env "$@" "$BIN_DIR/analytics-admin" keys create --name schemathesis-admin --scope admin | tail -n1)
  curl -sf -o /dev/null -X POST "$base/api/admin/sites" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"site_id":"schemathesis","domains":["schemathesis.example"]}'
  read=$(curl -sf -X POST "$base/api/admin/keys" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"name":"schemathesis-read","scope":"read"}' | field key)
  # The document's example site, in a zone with a quarter-hour offset, so
  # that the examples reach the reads' local-time paths too.
  curl -sf -o /dev/null -X POST "$base/api/admin/sites" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"site_id":"site-abc-123","timezone":"Asia/Kathmandu"}'
  # Goals and a saved funnel on it, so goal queries and funnels have some.
  local body
  for body in '{"name":"Signup","event":"signup"}' '{"name":"Pricing","page":"/pricing**"}' \
    '{"name":"Sales","event":"purchase","currency":"EUR"}'; do
    curl -sf -o /dev/null -X POST "$base/api/admin/sites/site-abc-123/goals" -H "Authorization: Bearer $admin" \
      -H 'Content-Type: application/json' -d "$body"
  done
  curl -sf -o /dev/null -X POST "$base/api/admin/sites/site-abc-123/funnels" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"name":"Checkout","steps":[{"page":"/"},{"goal":"Signup"}]}'
  local site
  for site in schemathesis site-abc-123; do
    curl -sf -o /dev/null -X POST "$base/events" -H 'Content-Type: application/json' \
      -d "{\"site_id\":\"$site\",\"event_type\":\"page_view\",\"path\":\"/\",\"user_id\":\"u1\"}"
  done
  local checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
  # One worker: Python 3.11's ast is not thread-safe, and schemathesis's
  # coverage phase parses sources from every worker ("AST constructor
  # recursion depth mismatch", a runtime error, not the api's).
  local common=(--no-color run "$base/openapi.json" --checks "$checks" --max-examples "$EXAMPLES"
    --workers 1 --request-timeout 30 --continue-on-failure --max-failures 100)
  if [[ -n "${SCHEMATHESIS_SEED:-}" ]]; then common+=(--seed "$SCHEMATHESIS_SEED"); fi
  # shellcheck disable=SC2206
  common+=(${SCHEMATHESIS_ARGS:-})
  local status=0 part key filter
  for part in read admin; do
    if [[ $part == read ]]; then key=$read filter=(--exclude-tag admin); else key=$admin filter=(--include-tag admin); fi
    echo "== schemathesis, $mode mode, $part key"
    local log="$ANALYTICS_CACHE/schemathesis-$mode-$part.log"
    # From the scratch directory: the example database it writes there
    # (.schemathesis/) goes with it.
    if (cd "$work" && "$ST" "${common[@]}" "${filter[@]}" -H "Authorization: Bearer $key") >"$log" 2>&1; then
      :
    else
      status=1
      # The failures themselves, before the summary below.
      sed -n '/^=* \(FAILURES\|ERRORS\) =*$/,/^=* SUMMARY =*$/p' "$log" | head -n 300
    fi
    sed -n '/^=* SUMMARY =*$/,$p' "$log"
  done
  if grep -q 'internal error\|panicked' "$work/$mode"-*.log; then
    echo "== the services logged internal errors:" >&2
    grep -h 'internal error\|panicked' "$work/$mode"-*.log | head -n 20 >&2
    status=1
  fi
  return $status
}

embedded() {
  local port metrics
  port=$(free_port)
  metrics=$(free_port)
  local env=(DATABASE_URL="sqlite://$work/embedded.db?mode=rwc")
  start analytics-api "${env[@]}" HTTP_ADDR="127.0.0.1:$port" METRICS_ADDR="127.0.0.1:$metrics" \
    READ_AUTH=keys INGEST_AUTH=open
  wait_ready "http://127.0.0.1:$port" "$work/$mode-analytics-api.log"
  run_checks embedded "http://127.0.0.1:$port" "${env[@]}"
}

kafka() {
  ensure_postgres
  ensure_broker
  local db="schemathesis_$$" topic="schemathesis-$$"
  createdb -h 127.0.0.1 -U postgres "$db"
  databases+=("$db")
  "$TANSU_BIN" topic create "$topic" --partitions 3 >/dev/null
  "$TANSU_BIN" topic create "$topic.dlq" --partitions 1 >/dev/null
  local env=(DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" KAFKA_BROKER_URLS=127.0.0.1:9092
    KAFKA_TOPIC="$topic" KAFKA_DLQ_TOPIC="$topic.dlq" KAFKA_GROUP_ID="$topic")
  if ! env "${env[@]}" "$BIN_DIR/analytics-migrate" up >"$work/$mode-analytics-migrate.log" 2>&1; then
    tail -n 30 "$work/$mode-analytics-migrate.log" >&2
    return 1
  fi
  local port metrics pmetrics
  port=$(free_port)
  metrics=$(free_port)
  pmetrics=$(free_port)
  start analytics-processor "${env[@]}" METRICS_ADDR="127.0.0.1:$pmetrics"
  start analytics-api "${env[@]}" HTTP_ADDR="127.0.0.1:$port" METRICS_ADDR="127.0.0.1:$metrics" INGEST_AUTH=open
  wait_ready "http://127.0.0.1:$port" "$work/$mode-analytics-api.log"
  wait_ready "http://127.0.0.1:$pmetrics" "$work/$mode-analytics-processor.log"
  run_checks kafka "http://127.0.0.1:$port" "${env[@]}"
}

started=$(date +%s)
cargo build --locked --quiet -p api -p processor -p admin -p migration --bins
ST=$(schemathesis_bin)
failed=0
for mode in "${modes[@]}"; do
  case $mode in
    embedded) embedded || failed=1 ;;
    kafka) kafka || failed=1 ;;
    *) echo "unknown mode $mode (embedded, kafka)" >&2; exit 2 ;;
  esac
done
echo "== schemathesis: ${modes[*]} in $(($(date +%s) - started))s; logs: $ANALYTICS_CACHE/schemathesis-*.log"
exit $failed
