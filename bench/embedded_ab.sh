#!/usr/bin/env bash
# One embedded-mode ingest measurement for A/B comparisons of api builds:
# a fresh api on a fresh SQLite file, FILL seconds of batches of 1,000 (so
# the tables are not empty), then 12 s of batches of BATCH events from
# CONNS connections. Prints the load generator's line, the api's CPU over
# the measured load, its peak RSS, and the writer's transaction count, size
# and time from its metrics. Alternate two builds a few times: one run of
# each on these shared machines says little.
#
#   bench/embedded_ab.sh [FILL=15] [BATCH=100] [CONNS=16] [API_BIN=target/release/analytics-api]
#
# Needs the release binaries (bench/run.sh builds them); uses 127.0.0.1:18081 (AB_HTTP_PORT)
# and :19091 (AB_METRICS_PORT) and a directory under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
fill=${1:-15}
batch=${2:-100}
conns=${3:-16}
api_bin=${4:-target/release/analytics-api}
warmup=2
measured=12
loadgen=target/release/analytics-bench
dir=target/embedded-ab
rm -rf "$dir" && mkdir -p "$dir"

# Rate limits off (builds without them ignore the variables): the load
# comes from one address.
RATE_LIMIT_ADDRESS_PER_SECOND=0 RATE_LIMIT_SITE_EVENTS_PER_SECOND=0 \
  MALLOC_ARENA_MAX=2 HTTP_ADDR=127.0.0.1:${AB_HTTP_PORT:-18081} METRICS_ADDR=127.0.0.1:${AB_METRICS_PORT:-19091} LOG_FORMAT=json \
  DATABASE_URL="sqlite://$PWD/$dir/analytics.db?mode=rwc" "$api_bin" >"$dir/api.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
ready=0
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:${AB_HTTP_PORT:-18081}/readyz >/dev/null && ready=1 && break; sleep 0.2; done
if ((!ready)); then
  echo "the api did not become ready; see $dir/api.log" >&2
  exit 1
fi

writer_metrics() {
  curl -s http://127.0.0.1:${AB_METRICS_PORT:-19091}/metrics |
    grep -E '^analytics_(writer_transaction_duration_seconds|processor_batch_size)_(sum|count)' | sort
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

if [[ $fill != 0 ]]; then
  "$loadgen" loadgen --url http://127.0.0.1:${AB_HTTP_PORT:-18081} --batch 1000 --connections 16 \
    --duration "$fill" --warmup 1 2>&1 >/dev/null | tail -n1
fi
before=$(writer_metrics)
ticks=$(cpu_ticks)
"$loadgen" loadgen --url http://127.0.0.1:${AB_HTTP_PORT:-18081} --batch "$batch" --connections "$conns" \
  --duration "$measured" --warmup "$warmup" 2>&1 >/dev/null | tail -n1
ticks=$(($(cpu_ticks) - ticks))
after=$(writer_metrics)
seconds=$((warmup + measured))
echo "api CPU over the $seconds s of load: $(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v s="$seconds" 'BEGIN {printf "%.2f", t / hz / s}') cores"
grep VmHWM "/proc/$pid/status"
paste <(echo "$before") <(echo "$after") | awk '{d[$1] = $4 - $2}
  END {
    n = d["analytics_processor_batch_size_count"]
    if (n > 0) printf "transactions %d, %.0f events each, %.2f ms each, %.2f µs an event\n", n,
      d["analytics_processor_batch_size_sum"] / n, 1000 * d["analytics_writer_transaction_duration_seconds_sum"] / n,
      1e6 * d["analytics_writer_transaction_duration_seconds_sum"] / d["analytics_processor_batch_size_sum"]
  }'
