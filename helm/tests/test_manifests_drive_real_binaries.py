"""The rendered manifests drive the real binaries.

The api, processor and migration containers are taken from the chart rendered
with the default values plus helm/tests/values/local.yaml (external Kafka and
PostgreSQL on this machine). Each binary runs with exactly its container's
command, args and environment: envFrom ConfigMaps come from the rendered
ConfigMap, secretKeyRefs are resolved to local values, and only the listen
addresses are moved to free local ports (container port -> local port). Then
the Job must migrate, every probe must answer 200 on its declared port and
path, and the ServiceMonitors' ports must serve metrics. Then, as an operator
following NOTES.txt would: the real analytics-admin, run with the api
container's environment (as `kubectl exec deploy/<api> -- analytics-admin`
gets it), registers a site and creates a read key; an event POSTed on the
Ingress path through the Service's port must then show up in GET /stats with
that key, while /stats without a key is 401 and an unregistered site's event
403; the key logs in at /login, and a shared link opens the site. Secrets
the chart creates (the session secret) are resolved from the rendered Secret,
as the kubelet would. Without the stack, each binary's --help must name every
variable the chart sets for it, with the chart's default (TRUSTED_PROXIES and
INGEST_AUTH/READ_AUTH, which the binary derives from its mode, aside).

Needs: the binaries (target/debug, or $ANALYTICS_BIN_DIR), PostgreSQL on
127.0.0.1:5432 (user postgres, trust auth) and a Kafka-protocol broker on
127.0.0.1:9092 with the tansu CLI ($TANSU_BIN or PATH). A missing one is a
failure, never a skip.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.client import HTTPConnection, HTTPMessage

import psycopg
import pytest

import helmlib

BIN_DIR = pathlib.Path(os.environ.get("ANALYTICS_BIN_DIR", helmlib.REPO_DIR / "target" / "debug"))
PG_HOST, PG_PORT = "127.0.0.1", 5432
KAFKA = "127.0.0.1:9092"
IMAGE_BIN = "/usr/local/bin/"


# --- helpers ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def http(method: str, url: str, body: object | None = None, timeout: float = 5,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:
        return 0, str(err)


def raw_http(method: str, port: int, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, HTTPMessage, str]:
    """One request, redirects not followed: (status, headers, body)."""
    conn = HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read().decode(errors="replace")
    finally:
        conn.close()


def set_cookies(headers: HTTPMessage) -> dict[str, str]:
    """name -> value of every Set-Cookie."""
    out = {}
    for line in headers.get_all("Set-Cookie") or []:
        name, _, rest = line.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


def labels_match(selector: dict, labels: dict) -> bool:
    return selector.items() <= labels.items()


def resolve_env(container: dict, docs: list[dict], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet would build it."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"unsupported envFrom {source}"
        env.update(helmlib.one(docs, "ConfigMap", ref["name"])["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var.get("valueFrom", {})
        if "secretKeyRef" in ref:
            key = (ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            rendered = helmlib.find(docs, "Secret", key[0])
            if rendered:
                # A Secret the chart creates: its value, as the kubelet would read it.
                assert key not in secrets, f"the chart renders Secret {key[0]}, the test must not stand in for it"
                env[var["name"]] = base64.b64decode(rendered[0]["data"][key[1]]).decode()
                continue
            assert key in secrets, f"{var['name']} reads Secret {key}, which the test does not provide"
            env[var["name"]] = secrets[key]
        elif "configMapKeyRef" in ref:
            cm = helmlib.one(docs, "ConfigMap", ref["configMapKeyRef"]["name"])
            env[var["name"]] = cm["data"][ref["configMapKeyRef"]["key"]]
        else:
            raise AssertionError(f"unsupported env source {var}")
    return env


class Workload:
    """One container of the rendered manifests, runnable on this machine."""

    def __init__(self, doc: dict, docs: list[dict], secrets: dict, logdir: pathlib.Path):
        self.doc = doc
        self.pod_labels = doc["spec"]["template"]["metadata"]["labels"]
        [self.container] = doc["spec"]["template"]["spec"]["containers"]
        self.name = self.container["name"]
        self.env = resolve_env(self.container, docs, secrets)
        # container port -> local port; port name -> container port.
        self.named = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        self.local = {cp: free_port() for cp in self.named.values()}
        # The only change to the environment: listen addresses (0.0.0.0:<containerPort>)
        # move to loopback on the free local port standing in for that container port.
        listening = set()
        for key, value in list(self.env.items()):
            m = re.fullmatch(r"0\.0\.0\.0:(\d+)", value)
            if m:
                container_port = int(m.group(1))
                assert container_port in self.local, f"{key}={value} listens on an undeclared port"
                self.env[key] = f"127.0.0.1:{self.local[container_port]}"
                listening.add(container_port)
        assert listening == set(self.local), f"{self.name}: a declared port has no listen address in env"
        command = self.container["command"] + self.container.get("args", [])
        assert command[0].startswith(IMAGE_BIN), command
        binary = BIN_DIR / command[0][len(IMAGE_BIN):]
        assert binary.is_file(), f"binary {binary} not found (build it, or set ANALYTICS_BIN_DIR)"
        self.argv = [str(binary)] + command[1:]
        self.log = logdir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def local_port(self, port: int | str) -> int:
        container_port = self.named[port] if isinstance(port, str) else port
        return self.local[container_port]

    def run(self, timeout: float) -> subprocess.CompletedProcess:
        with self.log.open("w") as out:
            return subprocess.run(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)

    def start(self) -> None:
        out = self.log.open("w")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def tail(self, n: int = 30) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return f"--- {self.name} log ---\n" + "\n".join(lines[-n:])


def wait_http(url: str, want: int, seconds: float) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    status, body = 0, ""
    while time.monotonic() < deadline:
        status, body = http("GET", url)
        if status == want:
            break
        time.sleep(0.5)
    return status, body


# --- the stack -------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # Every dependency is required: a missing one fails the test, never skips it.
    for binary in ("analytics-api", "analytics-processor", "analytics-migrate", "analytics-admin"):
        assert (BIN_DIR / binary).is_file(), f"{BIN_DIR / binary} not found (cargo build, or set ANALYTICS_BIN_DIR)"
    tansu = os.environ.get("TANSU_BIN") or shutil.which("tansu")
    assert tansu, "tansu CLI not found: set TANSU_BIN or put tansu on PATH"
    kafka_host, kafka_port = KAFKA.split(":")
    assert tcp_open(kafka_host, int(kafka_port)), f"no Kafka-protocol broker on {KAFKA}"
    admin_url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        pytest.fail(f"PostgreSQL on {PG_HOST}:{PG_PORT} (user postgres) is not reachable: {err}")

    suffix = uuid.uuid4().hex[:10]
    database = f"analytics_helm_{suffix}"
    topic = f"events-helm-{suffix}"
    admin.execute(f'CREATE DATABASE "{database}"')
    for name in (topic, f"{topic}.dlq"):
        created = subprocess.run(
            [tansu, "topic", "create", name, "--partitions", "3", "--broker", f"tcp://{KAFKA}"],
            capture_output=True, text=True, timeout=60,
        )
        assert created.returncode == 0, f"tansu topic create {name}: {created.stderr}"

    values = helmlib.load_values("defaults.yaml", "local.yaml", overrides={
        "topics": {"events": {"name": topic}, "dlq": {"name": f"{topic}.dlq"}, "consumerGroup": f"processor-helm-{suffix}"},
    })
    docs = helmlib.render(values)
    secrets = {("analytics-local-db", "uri"): f"postgres://postgres@{PG_HOST}:{PG_PORT}/{database}"}
    logdir = tmp_path_factory.mktemp("logs")
    work = {
        c: Workload(helmlib.by_component(docs, kind, c), docs, secrets, logdir)
        for kind, c in (("Job", "migration"), ("Deployment", "api"), ("Deployment", "processor"))
    }
    assert work["api"].env["KAFKA_BROKER_URLS"] == KAFKA and work["api"].env["KAFKA_TOPIC"] == topic

    notes = helmlib.render_files(values)["analytics/templates/NOTES.txt"]
    state = {"notes": notes, "docs": docs, "work": work, "suffix": suffix, "migrate_rc": None}
    # The Job first, as the post-install hook does; then the Deployments.
    job = work["migration"]
    state["migrate_rc"] = job.run(timeout=int(job.env["MIGRATE_WAIT_SECONDS"]) + 60).returncode
    if state["migrate_rc"] == 0:
        work["api"].start()
        work["processor"].start()
    try:
        yield state
    finally:
        for w in work.values():
            if w.proc and w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(timeout=10)
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
        for name in (topic, f"{topic}.dlq"):
            subprocess.run([tansu, "topic", "delete", name, "--broker", f"tcp://{KAFKA}"], capture_output=True, timeout=60, check=False)


def logs(stack) -> str:
    return "\n".join(w.tail() for w in stack["work"].values())


def admin(stack, *args: str) -> str:
    """`kubectl exec deploy/<api> -- analytics-admin ARGS`: the real binary, from
    the image's directory, with the api container's environment; its stdout."""
    w = stack["work"]["api"]
    binary = BIN_DIR / "analytics-admin"
    assert binary.is_file(), f"{binary} not found (cargo build, or set ANALYTICS_BIN_DIR)"
    assert "DATABASE_URL" in w.env
    done = subprocess.run([str(binary), *args], env=w.env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"analytics-admin {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


# --- the tests -------------------------------------------------------------


def binary_settings(binary: str) -> dict[str, str | None]:
    """Environment variable -> default (None: no default) from the binary's --help."""
    path = BIN_DIR / binary
    assert path.is_file(), f"{path} not found (cargo build, or set ANALYTICS_BIN_DIR)"
    # An empty environment: clap would show a set variable's value instead.
    out = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=30, env={}, check=True).stdout
    text = " ".join(out.split())
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"\[env: ([A-Z0-9_]+)[^\]]*\](?: \[default: ([^\]]*)\])?", text)
    }


@pytest.mark.parametrize("kind, component", [("Deployment", "api"), ("Deployment", "processor"), ("Job", "migration")])
def test_every_variable_the_chart_sets_is_read_by_the_binary(kind, component):
    # A misspelt name would be ignored silently, leaving the binary's default.
    docs = helmlib.render(helmlib.load_values("defaults.yaml"))
    [container] = helmlib.by_component(docs, kind, component)["spec"]["template"]["spec"]["containers"]
    known = binary_settings(container["command"][0][len(IMAGE_BIN):])
    # RUST_LOG is read by the log filter, not by the settings parser.
    unknown = [e["name"] for e in container["env"] if e["name"] not in known and e["name"] != "RUST_LOG"]
    assert unknown == [], f"{component}: the binary has no setting {unknown}"


def test_the_chart_defaults_are_the_binaries_defaults():
    # Limits, timeouts and rates: the chart passes on the binaries' defaults,
    # except TRUSTED_PROXIES (the binary trusts nobody; the chart trusts the
    # private ranges an in-cluster Ingress controller connects from).
    docs = helmlib.render(helmlib.load_values("defaults.yaml"))
    for component in ("api", "processor"):
        [container] = helmlib.by_component(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"]
        known = binary_settings(f"analytics-{component}")
        chart = {e["name"]: e["value"] for e in container["env"] if "value" in e and e["name"] not in ("HTTP_ADDR", "METRICS_ADDR")}
        assert chart, component
        differ = {k: (v, known.get(k)) for k, v in chart.items() if known.get(k) != v}
        # READ_AUTH and INGEST_AUTH have no fixed default: the binary picks one by
        # mode (keys and registered off loopback in Kafka mode), which the chart
        # states outright.
        expected = {
            "TRUSTED_PROXIES": ("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", '""'),
            "READ_AUTH": ("keys", None),
            "INGEST_AUTH": ("registered", None),
        }
        assert differ == (expected if component == "api" else {})


def test_migration_job_migrates(stack):
    job = stack["work"]["migration"]
    assert job.argv[1:] == ["up"]
    assert stack["migrate_rc"] == 0, job.tail()
    # A pre-upgrade hook runs it again on every upgrade: it must be a no-op.
    assert job.run(timeout=120).returncode == 0, job.tail()


@pytest.mark.parametrize("component", ["api", "processor"])
def test_every_probe_answers_200(stack, component):
    w = stack["work"][component]
    assert w.proc is not None, "not started: the migration failed"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = w.container[probe]
        get = spec["httpGet"]
        url = f"http://127.0.0.1:{w.local_port(get['port'])}{get['path']}"
        # Readiness waits for the broker and the schema; allow the startup budget and more.
        budget = max(90, spec.get("failureThreshold", 3) * spec.get("periodSeconds", 10))
        status, body = wait_http(url, 200, budget)
        assert w.proc.poll() is None, f"{component} exited with {w.proc.returncode}\n{w.tail()}"
        assert status == 200, f"{component} {probe} {get['path']} -> {status} {body}\n{w.tail()}"


def service_target(stack, service: dict, port_name: str) -> tuple[Workload, int]:
    """The workload behind a Service port, and the local port its targetPort maps to."""
    [port] = [p for p in service["spec"]["ports"] if p["name"] == port_name]
    [w] = [w for w in stack["work"].values() if "Deployment" == w.doc["kind"] and labels_match(service["spec"]["selector"], w.pod_labels)]
    return w, w.local_port(port["targetPort"])


def test_service_monitor_ports_serve_metrics(stack):
    docs = stack["docs"]
    monitors = helmlib.find(docs, "ServiceMonitor")
    assert len(monitors) == 2
    for sm in monitors:
        [svc] = [s for s in helmlib.find(docs, "Service") if labels_match(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        for endpoint in sm["spec"]["endpoints"]:
            w, port = service_target(stack, svc, endpoint["port"])
            status, body = wait_http(f"http://127.0.0.1:{port}{endpoint['path']}", 200, 30)
            assert status == 200, f"{sm['metadata']['name']}: {status}\n{w.tail()}"
            assert "analytics_" in body, body[:500]


def test_event_through_the_ingress_path_reaches_stats(stack):
    docs = stack["docs"]
    ingress = helmlib.one(docs, "Ingress")
    paths = {p["path"]: p["backend"]["service"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    backend = paths["/events"]
    svc = helmlib.one(docs, "Service", backend["name"])
    w, port = service_target(stack, svc, backend["port"]["name"])
    base = f"http://127.0.0.1:{port}"
    assert wait_http(f"{base}/readyz", 200, 90)[0] == 200, logs(stack)

    site = f"helm-{stack['suffix']}"
    now = datetime.datetime.now(datetime.timezone.utc)
    event = {"site_id": site, "event_type": "page_view", "path": "/helm", "user_id": "u-1",
             "timestamp": now.isoformat().replace("+00:00", "Z")}
    url = f"{base}/stats?site_id={site}&date={now.date().isoformat()}"

    # Before the operator does anything: no reads without a key, no events
    # for a site nobody registered.
    status, body = http("GET", url)
    assert status == 401, f"/stats without a key: {status} {body}"
    status, body = http("POST", f"{base}/events", dict(event, site_id=f"unregistered-{stack['suffix']}"))
    assert status == 403, f"unregistered site: {status} {body}"

    # What NOTES.txt tells the operator to run in an api pod.
    out = admin(stack, "sites", "add", site, "--domain", "helm.example.com")
    assert site in out, out
    out = admin(stack, "keys", "create", "--name", f"helm-reader-{stack['suffix']}", "--scope", "read", "--site", site)
    lines = out.strip().splitlines()
    key = lines[-1].strip()
    assert len(lines) >= 2 and key and " " not in key, out
    stack["read_key"], stack["site"] = key, site
    status, _ = http("GET", url, headers={"Authorization": "Bearer not-a-key"})
    assert status == 401, status

    status, body = http("POST", f"{base}/events", event)
    assert status == 202, f"{status} {body}\n{logs(stack)}"
    assert json.loads(body)["event_id"]
    batch_backend = paths["/events/batch"]
    assert batch_backend == backend
    batch = [dict(event, user_id="u-2"), dict(event, path="/other", user_id="u-2")]
    status, body = http("POST", f"{base}/events/batch", batch)
    assert status == 202 and json.loads(body)["accepted"] == 2, f"{status} {body}"

    # The processor (its own consumer group) folds the events into the rollups.
    deadline = time.monotonic() + 60
    stats: dict = {}
    while time.monotonic() < deadline:
        status, body = http("GET", url, headers={"Authorization": f"Bearer {key}"})
        if status == 200:
            stats = json.loads(body)
            if stats.get("total_views", 0) >= 3:
                break
        time.sleep(1)
    assert stats.get("total_views") == 3, f"stats never caught up: {stats}\n{logs(stack)}"
    assert stats["unique_users"] == 2
    top = stats["top_paths"][0]
    assert (top["path"], top["views"]) == ("/helm", 2)
    # Still none without the key, once there is data.
    assert http("GET", url)[0] == 401


def test_notes_login_and_shared_link_open_the_stats(stack):
    # NOTES.txt: paste a read key at /login (through the port-forward); make a
    # shared link with analytics-admin and open /share/<token>.
    key, site = stack.get("read_key"), stack.get("site")
    assert key, "no read key: test_event_through_the_ingress_path_reaches_stats failed"
    w = stack["work"]["api"]
    port = w.local_port("http")
    path = f"/stats?site_id={site}&date={datetime.datetime.now(datetime.timezone.utc).date().isoformat()}"
    form = {"content-type": "application/x-www-form-urlencoded"}

    status, _, page = raw_http("GET", port, "/login")
    assert status == 200 and "<form" in page.lower(), status
    status, _, _ = raw_http("POST", port, "/login", b"key=not-a-key", form)
    assert status == 401, status
    status, headers, body = raw_http("POST", port, "/login", urllib.parse.urlencode({"key": key}).encode(), form)
    assert status == 303, f"{status} {body}\n{w.tail()}"
    session = set_cookies(headers)["analytics_session"]
    assert session
    # The session is signed with SESSION_SECRET from the chart's Secret.
    status, _, body = raw_http("GET", port, path, headers={"Cookie": f"analytics_session={session}"})
    assert status == 200 and json.loads(body)["total_views"] == 3, f"{status} {body}"

    out = admin(stack, "links", "create", "--site", site)
    share = out.strip().splitlines()[-1].strip()
    assert share.startswith("/share/"), out
    status, headers, _ = raw_http("GET", port, share)
    assert status == 303 and headers["Location"].startswith("/?site="), (status, dict(headers))
    token = set_cookies(headers)["analytics_share"]
    status, _, body = raw_http("GET", port, path, headers={"Cookie": f"analytics_share={token}"})
    assert status == 200 and json.loads(body)["total_views"] == 3, f"{status} {body}"
    # Another site is not the link's.
    other = path.replace(f"site_id={site}", "site_id=another-site")
    assert raw_http("GET", port, other, headers={"Cookie": f"analytics_share={token}"})[0] == 403


def test_notes_port_forward_reaches_the_dashboard(stack):
    # NOTES.txt tells the user: kubectl port-forward svc/<api> 8080:<service port>.
    m = re.search(r"port-forward svc/(\S+) (\d+):(\d+)", stack["notes"])
    assert m, stack["notes"]
    svc = helmlib.one(stack["docs"], "Service", m.group(1))
    [port] = [p for p in svc["spec"]["ports"] if p["port"] == int(m.group(3))]
    w, local = service_target(stack, svc, port["name"])
    status, body = http("GET", f"http://127.0.0.1:{local}/")
    assert status == 200 and "<html" in body.lower(), f"{status} {body[:300]}\n{w.tail()}"


def test_sigterm_exits_cleanly_within_the_grace_period(stack):
    # Kubernetes sends SIGTERM, waits terminationGracePeriodSeconds, then SIGKILLs.
    for component in ("api", "processor"):
        w = stack["work"][component]
        assert w.proc is not None and w.proc.poll() is None, w.tail()
        grace = w.doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        w.proc.send_signal(signal.SIGTERM)
        try:
            rc = w.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{component} still running {grace}s after SIGTERM\n{w.tail()}")
        assert rc == 0, f"{component} exited {rc}\n{w.tail()}"
