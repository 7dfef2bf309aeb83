#!/usr/bin/env python3
"""ClickHouse's side of the v2 query scenario (bench/README.md): chdb, ClickHouse in-process.

  v2_chdb.py status --db DIR --marker M              {"ready": bool, "rows": n}
  v2_chdb.py load   --db DIR --marker M --csv FILE   loads the raw events (CSV with a header) into a MergeTree table
  v2_chdb.py run    --db DIR --marker M --queries FILE --reps N --budget S --cold-counts-after S
                                                      times each query in-process; prints JSON

The table is kept in DIR between runs; the marker names the dataset it was loaded from. Each query's first answer is
untimed (a warm-up) unless it took longer than --cold-counts-after seconds; then up to --reps answers are timed,
stopping once --budget seconds are spent with at least --min-samples timed. The timed call is `Session.query(sql, "JSONCompact")`:
ClickHouse plans, runs and formats the answer; Python only parses the first answer's rows.
Progress goes to stderr, the result (one JSON document) to stdout.
"""

import argparse
import json
import math
import sys
import time

from chdb import session as chs

COLUMNS = """
    site_id LowCardinality(String),
    timestamp DateTime64(6, 'UTC'),
    event_id String,
    event_type LowCardinality(String),
    path String,
    visitor String,
    hostname LowCardinality(String),
    referrer String,
    source LowCardinality(String),
    channel LowCardinality(String),
    utm_source LowCardinality(String),
    utm_medium LowCardinality(String),
    utm_campaign LowCardinality(String),
    utm_content String,
    utm_term String,
    browser LowCardinality(String),
    browser_version LowCardinality(String),
    os LowCardinality(String),
    os_version LowCardinality(String),
    device LowCardinality(String),
    country LowCardinality(String),
    props String
"""

# Plausible's own events table is ordered by (site_id, toDate(timestamp), user_id, timestamp).
ORDER_BY = "(site_id, toDate(timestamp), visitor, timestamp)"


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}] chdb: {msg}", file=sys.stderr, flush=True)


def rows_of(result):
    data = json.loads(result.bytes() or b"{}")
    out = []
    for row in data.get("data", []):
        # 64-bit integers come quoted in ClickHouse's JSON.
        out.append({"dimension": str(row[0]), "metrics": [float(x) for x in row[1:]]})
    return out


def one(sess, sql):
    return sess.query(sql, "JSONCompact").bytes() or b""


def ready(sess, marker):
    try:
        r = json.loads(sess.query("SELECT marker FROM bench.marker", "JSONCompact").bytes() or b"{}")
        if r.get("data") and r["data"][0][0] == marker:
            n = json.loads(sess.query("SELECT count() FROM bench.events", "JSONCompact").bytes())["data"][0][0]
            return int(n)
    except Exception:  # noqa: BLE001 - no table yet
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["status", "load", "run"])
    ap.add_argument("--db", required=True)
    ap.add_argument("--marker", required=True)
    ap.add_argument("--csv")
    ap.add_argument("--queries")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--budget", type=float, default=15.0)
    ap.add_argument("--min-samples", type=int, default=3)
    ap.add_argument("--cold-counts-after", type=float, default=2.0)
    a = ap.parse_args()
    sess = chs.Session(a.db)

    if a.command == "status":
        n = ready(sess, a.marker)
        print(json.dumps({"ready": n is not None, "rows": n or 0}))
        return

    if a.command == "load":
        started = time.perf_counter()
        sess.query("CREATE DATABASE IF NOT EXISTS bench")
        sess.query("DROP TABLE IF EXISTS bench.marker")
        sess.query("DROP TABLE IF EXISTS bench.events")
        sess.query(f"CREATE TABLE bench.events ({COLUMNS}) ENGINE = MergeTree ORDER BY {ORDER_BY}")
        structure = " ".join(COLUMNS.split()).replace("LowCardinality(String)", "String")
        sess.query(
            f"INSERT INTO bench.events SELECT * FROM file('{a.csv}', 'CSVWithNames', '{structure.replace(chr(39), chr(92) + chr(39))}')"
        )
        loaded = time.perf_counter() - started
        say(f"inserted in {loaded:.0f} s; OPTIMIZE FINAL")
        sess.query("OPTIMIZE TABLE bench.events FINAL")
        sess.query("CREATE TABLE bench.marker (marker String) ENGINE = MergeTree ORDER BY marker")
        sess.query(f"INSERT INTO bench.marker VALUES ('{a.marker}')")
        n = ready(sess, a.marker)
        print(json.dumps({"rows": n, "seconds": time.perf_counter() - started, "insert_seconds": loaded}))
        return

    # run
    version = json.loads(one(sess, "SELECT version()"))["data"][0][0]
    with open(a.queries) as f:
        queries = json.load(f)
    sess.query("USE bench")
    results = {}
    for q in queries:
        times = []
        errors = 0
        error = None
        rows = None
        started = time.perf_counter()
        t = time.perf_counter()
        try:
            rows = rows_of(sess.query(q["sql"], "JSONCompact"))
            took = time.perf_counter() - t
            if took > a.cold_counts_after:
                times.append(took)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            errors += 1
            error = str(e)[:500]
        if rows is not None:
            while len(times) < a.reps and (len(times) < a.min_samples or time.perf_counter() - started < a.budget):
                t = time.perf_counter()
                try:
                    sess.query(q["sql"], "JSONCompact")
                    times.append(time.perf_counter() - t)
                except Exception as e:  # noqa: BLE001
                    errors += 1
                    error = str(e)[:500]
                    if errors > 3:
                        break
        times.sort()
        ms = [x * 1000 for x in times]

        def pct(p):
            if not ms:
                return None
            # Nearest rank, as hdrhistogram's value_at_quantile does.
            k = max(1, math.ceil(p * len(ms)))
            return ms[min(len(ms), k) - 1]

        r = {"samples": len(ms), "errors": errors, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "rows": rows}
        if error:
            r["error"] = error
        results[q["id"]] = r
        say(f"{q['id']:<14} p50 {r['p50_ms'] or 0:9.1f} ms p99 {r['p99_ms'] or 0:9.1f} ms ({len(ms)} samples)"
            + (f" ERROR {error[:200]}" if error else ""))
    print(json.dumps({"version": version, "results": results}))


if __name__ == "__main__":
    main()
