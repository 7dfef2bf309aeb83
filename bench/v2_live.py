#!/usr/bin/env python3
"""The v2 scenario's queries for the largest site while it receives events.

The real api and processor (Kafka mode) on the query dataset of
`analytics-bench all --only queries` (PostgreSQL `analytics_bench_10m`, or the
database named by V2_DB). For each query of the list, over the dataset's 30
days: the first answer (read + build, "cold"), then unchanged answers
("warm", from the column cache), then ROUNDS times: a batch of new events for
the site's last day (some visitors new, some continuing a visit of the same
run) posted to /events/batch, waited for until /stats counts them, and the
query answered once ("after a change": the cache reads only the recent
events and keeps its columns). At the end, every query is answered again by
a second api with no cache (QUERY_CACHE_MB=0), and the answers compared.

Usage:
    bench/v2_live.py [QUERY_CACHE_MB] [ROUNDS] [OUT.json]
Needs release binaries (target/release, or BIN_DIR), a broker on 9092 and
TANSU_BIN (to create the topic). Prints a Markdown table and writes JSON.
"""
import json, os, random, socket, statistics, subprocess, sys, time, urllib.error, urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BIN_DIR = os.environ.get("BIN_DIR", os.path.join(ROOT, "target", "release"))
DB = os.environ.get("V2_DB", "analytics_bench_10m")
SITE = os.environ.get("V2_SITE", "site-00")
CACHE_MB = sys.argv[1] if len(sys.argv) > 1 else "128"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
OUT = sys.argv[3] if len(sys.argv) > 3 else None
URL = f"postgres://postgres@127.0.0.1:5432/{DB}"
TOPIC = f"v2live-{os.getpid()}"


def psql(sql):
    return subprocess.check_output(["psql", "-qtA", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-c", sql],
                                   text=True).strip()


def start(name, port, metrics, extra):
    env = {"PATH": os.environ["PATH"], "RUST_LOG": "warn", "LOG_FORMAT": "json", "MALLOC_ARENA_MAX": "2",
           "HTTP_ADDR": f"127.0.0.1:{port}", "METRICS_ADDR": f"127.0.0.1:{metrics}", "READ_AUTH": "open",
           "INGEST_AUTH": "open", "RATE_LIMIT_ADDRESS_PER_SECOND": "0", "RATE_LIMIT_SITE_EVENTS_PER_SECOND": "0",
           "DATABASE_URL": URL, "KAFKA_BROKER_URLS": "127.0.0.1:9092", "KAFKA_TOPIC": TOPIC,
           "KAFKA_DLQ_TOPIC": TOPIC + ".dlq", "KAFKA_GROUP_ID": TOPIC,
           "HTTP_REQUEST_TIMEOUT_SECONDS": "3600", **extra}
    log = open(f"/tmp/v2_live_{name}_{port}.log", "w")
    p = subprocess.Popen([os.path.join(BIN_DIR, name)], env=env, stdout=log, stderr=log)
    # The processor serves only its metrics (and probes) address.
    listens = metrics if name == "analytics-processor" else port
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", listens), 0.2).close()
            return p
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{name} did not listen on {port}: see /tmp/v2_live_{name}_{port}.log")


def request(port, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"content-type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=3600) as r:
            out = json.load(r)
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{path}: {e.code} {e.read().decode(errors='replace')}")
    return (time.perf_counter() - t) * 1000, out


S = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]
E = ["visitors", "pageviews"]
QUERIES = [
    ("breakdown", "visit:source", [], S),
    ("breakdown", "event:page", [], E),
    ("1 filter", "visit:browser", [["is", "visit:country", ["DE"]]], S),
    ("2 filters", "event:page", [["is", "event:page", ["/"]], ["is", "visit:source", ["Google"]]], E),
    ("contains", "event:page", [["contains", "event:page", ["blog"]]], E),
    ("series", "time:day", [["is", "visit:source", ["Google"]]], S),
]


def main():
    subprocess.run([os.environ["TANSU_BIN"], "topic", "create", TOPIC, "--partitions", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([os.environ["TANSU_BIN"], "topic", "create", TOPIC + ".dlq", "--partitions", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    first, last = psql(f"SELECT MIN(day), MAX(day) FROM daily_event_counts WHERE site_id = '{SITE}' AND day < CURRENT_DATE").split("|")
    events = int(psql(f"SELECT SUM(events) FROM daily_event_counts WHERE site_id = '{SITE}'"))
    proc = start("analytics-processor", 18941, 18942, {})
    api = start("analytics-api", 18943, 18944, {"QUERY_CACHE_MB": CACHE_MB})
    bodies = [{"site_id": SITE, "metrics": m, "dimensions": [d], "filters": f, "date_range": [first, last],
               "pagination": {"limit": 10}} for _, d, f, m in QUERIES]
    rng = random.Random(7)
    sent = 0
    minute = 0

    def post_and_wait():
        nonlocal sent, minute
        # 20 events at the last day's afternoon, a minute later each round:
        # half from visitors continuing the run's earlier visits.
        batch = []
        for k in range(20):
            user = f"live-{rng.randrange(40)}" if k % 2 else f"live-new-{sent + k}"
            ts = f"{last}T14:{minute // 60 % 60:02d}:{minute % 60:02d}Z"
            batch.append({"site_id": SITE, "event_type": "page_view", "path": rng.choice(["/", "/blog/x", "/pricing"]),
                          "user_id": user, "timestamp": ts, "referrer": "https://www.google.com/"})
        minute += 1
        before = request(18943, f"/stats?site_id={SITE}&date={last}")[1]["total_events"]
        request(18943, "/events/batch", batch)
        sent += len(batch)
        for _ in range(600):
            if request(18943, f"/stats?site_id={SITE}&date={last}")[1]["total_events"] >= before + len(batch):
                return
            time.sleep(0.05)
        raise SystemExit("the processor did not write the events within 30 s")

    rows = []
    for (kind, d, f, _), body in zip(QUERIES, bodies):
        cold, _ = request(18943, "/api/v2/query", body)
        warm = sorted(request(18943, "/api/v2/query", body)[0] for _ in range(10))
        live = []
        for _ in range(ROUNDS):
            post_and_wait()
            live.append(request(18943, "/api/v2/query", body)[0])
        live.sort()
        label = d + (" | " + " & ".join(f"{x[1]} {x[0]} {x[2][0]}" for x in f) if f else "")
        row = {"kind": kind, "query": label, "cold_ms": round(cold, 1), "warm_p50_ms": round(statistics.median(warm), 1),
               "warm_max_ms": round(warm[-1], 1), "changed_p50_ms": round(statistics.median(live), 1),
               "changed_max_ms": round(live[-1], 1), "changes": len(live)}
        rows.append(row)
        print(row, flush=True)
    hwm = [l.split()[1] for l in open(f"/proc/{api.pid}/status") if l.startswith("VmHWM")][0]
    # The answers as they are now, from the kept columns and recent reads,
    # against an api that reads everything afresh.
    kept = [request(18943, "/api/v2/query", b)[1]["results"] for b in bodies]
    fresh_api = start("analytics-api", 18945, 18946, {"QUERY_CACHE_MB": "0"})
    fresh = [request(18945, "/api/v2/query", b)[1]["results"] for b in bodies]
    equal = sum(a == b for a, b in zip(kept, fresh))
    for p in (api, proc, fresh_api):
        p.terminate()
        p.wait()
    out = {"site": SITE, "site_events": events, "range": [first, last], "cache_mb": CACHE_MB, "events_sent": sent,
           "api_vmhwm_kb": int(hwm), "answers_equal_to_fresh": f"{equal} of {len(bodies)}", "rows": rows}
    print(f"\n{SITE} ({events:,} events), {first}..{last}, QUERY_CACHE_MB={CACHE_MB}, {sent} events sent; "
          f"api VmHWM {int(hwm) / 1024:.1f} MB; answers equal to a fresh read: {equal} of {len(bodies)}\n")
    print("| query | cold ms | unchanged p50 / max ms | after a change p50 / max ms (n) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kind']}: {r['query']} | {r['cold_ms']:,} | {r['warm_p50_ms']} / {r['warm_max_ms']} | "
              f"{r['changed_p50_ms']} / {r['changed_max_ms']} ({r['changes']}) |")
    if OUT:
        json.dump(out, open(OUT, "w"), indent=1)
    if equal != len(bodies):
        raise SystemExit("answers differ from a fresh read")


main()
