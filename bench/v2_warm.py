#!/usr/bin/env python3
"""The v2 scenario's queries against the api built now, warm: the first
query of each site reads its range's columns (timed apart as "cold"), the
others are answered from the column cache, 20 times each. Usage:
    bench/v2_warm.py [QUERY_CACHE_MB] [OUT.json]   (the 10M dataset of `--only queries` must exist;
                                          release binaries in target/release; a broker on 9092)
Environment: API_BIN (another build's api, for A/B runs), SITES (comma list,
default site-10,site-00), REPS (answers per query, default 20).
Prints one row per query (site, kind, query, p50 ms, max ms, n) and the api's VmHWM."""
import json, subprocess, time, os, statistics, urllib.request, sys, socket
BIN = os.environ.get("API_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "analytics-api")
SITES = os.environ.get("SITES", "site-10,site-00").split(",")
REPS = int(os.environ.get("REPS", "20"))
port = 18931
env = {"PATH": os.environ["PATH"], "RUST_LOG": "warn", "LOG_FORMAT": "json", "MALLOC_ARENA_MAX": "2",
       "HTTP_ADDR": f"127.0.0.1:{port}", "METRICS_ADDR": "127.0.0.1:18932", "READ_AUTH": "open", "INGEST_AUTH": "open",
       "RATE_LIMIT_ADDRESS_PER_SECOND": "0", "RATE_LIMIT_SITE_EVENTS_PER_SECOND": "0",
       "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/analytics_bench_10m", "KAFKA_BROKER_URLS": "127.0.0.1:9092",
       "KAFKA_TOPIC": "v2m", "KAFKA_DLQ_TOPIC": "v2m.dlq", "KAFKA_GROUP_ID": "v2m", "QUERY_CACHE_MB": sys.argv[1] if len(sys.argv) > 1 else "128"}
log = open(os.environ.get("V2_WARM_LOG", "/tmp/v2_warm_api.log"), "w")
p = subprocess.Popen([BIN], env=env, stdout=log, stderr=log)
for _ in range(200):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close(); break
    except OSError:
        time.sleep(0.1)
def post(body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/query", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.load(r)
    return (time.perf_counter() - t) * 1000, out
S = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]; E = ["visitors", "pageviews"]
dims = ["visit:source", "visit:channel", "visit:browser", "visit:os", "visit:device", "visit:country", "event:page", "visit:entry_page", "visit:exit_page"]
qs = []
for d in dims:
    m = E if d.startswith("event:") else S
    qs.append(("breakdown", d, [], m))
    qs.append(("1 filter", d, [["is", "visit:country", ["DE"]]], m))
    qs.append(("2 filters", d, [["is", "event:page", ["/"]], ["is", "visit:source", ["Google"]]], m))
qs.append(("contains", "event:page", [["contains", "event:page", ["blog"]]], E))
qs.append(("series", "time:day", [["is", "visit:source", ["Google"]]], S))
rows = []
for site in SITES:
    first = True
    for kind, d, f, m in qs:
        body = {"site_id": site, "metrics": m, "dimensions": [d], "filters": f, "date_range": ["2026-11-07", "2026-12-06"], "pagination": {"limit": 10}}
        ms, out = post(body)
        if first:
            rows.append((site, "cold (first query: read + build)", "", ms, ms, 1)); first = False
        times = []
        for _ in range(REPS):
            t, _ = post(body); times.append(t)
        times.sort()
        rows.append((site, kind, d + (" | " + " & ".join(f"{x[1]} {x[0]} {x[2][0]}" for x in f) if f else ""), statistics.median(times), times[-1], len(times)))
        print(rows[-1], flush=True)
rss = [l for l in open(f"/proc/{p.pid}/status") if l.startswith(("VmRSS", "VmHWM"))]
print("".join(rss))
try:  # the column cache's own figures (builds since the cache metrics)
    metrics = urllib.request.urlopen("http://127.0.0.1:18932/metrics", timeout=10).read().decode()
    print("\n".join(l for l in metrics.splitlines() if l.startswith("analytics_query_cache")))
except OSError:
    pass
p.terminate(); p.wait()
json.dump(rows, sys.stdout if len(sys.argv) < 3 else open(sys.argv[2], "w"))
