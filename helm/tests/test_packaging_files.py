"""The files around the chart: docs table, Grafana dashboard, operator pins,
skaffold profiles, Dockerfile."""

import json
import re
import subprocess
import sys

import yaml

import helmlib

ROOT = helmlib.REPO_DIR
CONTRACT_METRICS = {
    "analytics_http_requests_total", "analytics_http_request_duration_seconds",
    "analytics_events_ingested_total", "analytics_events_written_total",
    "analytics_processor_lag_seconds", "analytics_processor_lag_messages",
    "analytics_processor_batch_size", "up",
}


def test_values_table_in_docs_is_generated_from_the_schema():
    proc = subprocess.run([sys.executable, str(ROOT / "helm" / "gen-values-doc.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_value_is_in_the_schema_and_documented():
    schema = json.loads((helmlib.CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((helmlib.CHART_DIR / "values.yaml").read_text())

    def walk(v, s, path):
        assert s.get("description"), f"{path or 'root'} has no description"
        if isinstance(v, dict) and "properties" in s:
            for key, sub in v.items():
                assert key in s["properties"], f"{path}.{key} missing from values.schema.json"
                walk(sub, s["properties"][key], f"{path}.{key}" if path else key)

    for key, sub in values.items():
        walk(sub, schema["properties"][key], key)


def test_grafana_dashboard_uses_the_platform_metrics():
    dash = json.loads((ROOT / "k8s" / "grafana" / "analytics-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    used = set()
    for expr in exprs:
        for name in re.findall(r"\b(analytics_[a-z_]+|up)\{", expr):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    assert used <= CONTRACT_METRICS, used - CONTRACT_METRICS
    assert CONTRACT_METRICS - used == set(), CONTRACT_METRICS - used
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_operator_versions_are_pinned_consistently():
    script = (ROOT / "k8s" / "install-operators.sh").read_text()
    assert "STRIMZI_VERSION=1.2.0" in script and "oci://quay.io/strimzi-helm/strimzi-kafka-operator" in script
    assert "CNPG_CHART_VERSION=0.29.0" in script
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    releases = {r["name"]: r for r in skaffold["deploy"]["helm"]["releases"]}
    assert releases["strimzi-kafka-operator"]["version"] == "1.2.0"
    assert releases["strimzi-kafka-operator"]["remoteChart"] == "oci://quay.io/strimzi-helm/strimzi-kafka-operator"
    assert releases["cnpg"]["version"] == "0.29.0" and releases["cnpg"]["repo"] == "https://cloudnative-pg.github.io/charts"


def _apply(doc, patches):
    """The two JSON-patch operations skaffold profiles here use."""
    for p in patches:
        parts = p["path"].strip("/").split("/")
        target = doc
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = parts[-1]
        if isinstance(target, list):
            assert p["op"] == "add"
            target.insert(int(last), p["value"])
        else:
            assert p["op"] == "add" or last in target, p["path"]
            target[last] = p["value"]
    return doc


def test_skaffold_builds_and_deploys_the_chart_with_profiles():
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    assert re.fullmatch(r"skaffold/v4beta\d+", skaffold["apiVersion"])
    [artifact] = skaffold["build"]["artifacts"]
    app = skaffold["deploy"]["helm"]["releases"][-1]
    assert app["chartPath"] == "helm/analytics"
    assert app["setValueTemplates"]["image.repository"] == f"{{{{.IMAGE_REPO_{artifact['image']}}}}}"
    assert app["setValueTemplates"]["image.tag"] == f"{{{{.IMAGE_TAG_{artifact['image']}}}}}"
    profiles = {p["name"]: p for p in skaffold["profiles"]}
    import copy
    for combo in (["dev"], ["monitoring"], ["dev", "monitoring"]):
        doc = copy.deepcopy(skaffold)
        for name in combo:
            doc = _apply(doc, profiles[name]["patches"])
        app = [r for r in doc["deploy"]["helm"]["releases"] if r["name"] == "analytics"][0]
        # Every value the profile sets exists in the chart and passes its schema.
        values: dict = {}
        for key, value in app.get("setValues", {}).items():
            cursor = values
            *head, tail = key.split(".")
            for part in head:
                cursor = cursor.setdefault(part, {})
            cursor[tail] = value
        helmlib.chart().validate_schema(values)
        helmlib.render(values)
        if "dev" in combo:
            assert values["config"]["logFormat"] == "pretty" and values["api"]["replicaCount"] == 1
        if "monitoring" in combo:
            assert values["metrics"]["serviceMonitor"]["enabled"] is True


# The image's binaries; the chart runs the first three, operators run
# analytics-admin with `kubectl exec` in an api pod (NOTES.txt).
IMAGE_BINARIES = ("analytics-api", "analytics-processor", "analytics-migrate", "analytics-admin")


def test_dockerfile_builds_the_four_binaries_as_non_root():
    text = (ROOT / "Dockerfile").read_text()
    for pkg in "cmake libcurl4-openssl-dev libsasl2-dev libssl-dev zlib1g-dev libzstd-dev pkg-config".split():
        assert pkg in text, pkg
    assert "cargo build --release --locked -p api -p processor -p migration -p admin" in text
    # Each -p names a workspace crate whose [[bin]] is one of the image's binaries.
    bins = set()
    for crate in re.search(r"cargo build --release --locked((?: -p \w+)+)", text).group(1).split()[1::2]:
        bins |= set(re.findall(r'^name = "(analytics-[a-z]+)"', (ROOT / crate / "Cargo.toml").read_text(), re.M))
    assert bins == set(IMAGE_BINARIES)
    # All four land in /usr/local/bin (the builder's /out/ is copied there), on one install line.
    install = re.search(r"install -m 0755 ((?:[^\n]|\\\n)+?) /out/", text).group(1)
    assert sorted(re.findall(r"target/release/(analytics-[a-z]+)", install)) == sorted(IMAGE_BINARIES)
    assert "COPY --from=builder /out/ /usr/local/bin/" in text
    assert "four binaries" in text and "analytics-admin" in text.split("\n\n")[0]
    # The patched sqlx-core must reach the build: nothing may skeletonise or ignore vendor/.
    assert "cargo chef" not in text.replace("cargo-chef is not used", "")
    assert not any(line.strip("/").startswith("vendor") for line in (ROOT / ".dockerignore").read_text().splitlines())
    for binary in IMAGE_BINARIES:
        assert f"target/release/{binary}" in text
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert (ROOT / ".dockerignore").read_text().splitlines()[2:4] == ["target/", "**/target/"]
