"""The chart lints clean (strict) and renders for every value set."""

import helm_python
import pytest

import helmlib


def test_lint_strict_is_clean():
    for name, files in helmlib.VALUE_SETS.items():
        report = helm_python.lint(
            str(helmlib.CHART_DIR), helmlib.load_values(*files), strict=True,
            namespace=helmlib.NAMESPACE, kube_version="v1.30.0",
        )
        assert report["errors"] == [], (name, report)
        # severity 2 = warning, 3 = error; 1 (info) is only "icon is recommended".
        bad = [m for m in report["messages"] if m["severity"] >= 2]
        assert bad == [], (name, bad)


def test_renders_expected_objects(rendered):
    name, docs = rendered
    kinds = sorted({d["kind"] for d in docs})
    print(f"{name}: {len(docs)} objects: {kinds}")
    for kind in ("Deployment", "Service", "ConfigMap", "Job", "Pod", "NetworkPolicy", "PodDisruptionBudget", "ServiceMonitor"):
        assert helmlib.find(docs, kind), f"{name}: no {kind}"
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), f"{name}: duplicate objects"
    for d in docs:
        assert d["metadata"].get("namespace") == helmlib.NAMESPACE, (d["kind"], d["metadata"]["name"])
        labels = d["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels, (d["kind"], d["metadata"]["name"], key)


def test_value_sets_render_what_they_select():
    defaults = helmlib.render_set("defaults")
    external = helmlib.render_set("external")
    production = helmlib.render_set("production")
    for kind in ("Kafka", "KafkaNodePool", "Cluster", "Ingress", "PrometheusRule"):
        assert helmlib.find(defaults, kind), kind
    assert len(helmlib.find(defaults, "KafkaTopic")) == 2
    assert not helmlib.find(defaults, "HorizontalPodAutoscaler")
    for kind in ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster"):
        assert not helmlib.find(external, kind), kind
    assert len(helmlib.find(production, "HorizontalPodAutoscaler")) == 2
    assert helmlib.find(production, "KafkaUser")


@pytest.mark.parametrize("bad", [
    {"api": {"replicas": 3}},                       # unknown key (replicaCount is the key)
    {"config": {"logFormat": "xml"}},               # not an enum value
    {"kafka": {"listener": {"authentication": "plain"}}},
    {"externalKafka": {"brokers": "no-port"}},
    {"image": {"pullPolicy": "Sometimes"}},
    {"ingress": {"hosts": [{"host": "a", "paths": ["/"]}]}},  # paths are fixed by the chart
    {"api": {"trustedProxies": "ingress-nginx"}},   # CIDRs, not names
    {"api": {"http": {"maxInFlight": 0}}},          # the api refuses 0
    {"api": {"http": {"maxConnections": 0}}},
    {"api": {"http": {"headerTimeoutSeconds": 0}}},
    {"api": {"http": {"keepAliveSeconds": 5}}},     # unknown key
    {"api": {"rateLimit": {"siteBurst": -1}}},
    {"api": {"rateLimit": {"addressPerSecond": 4294967296}}},  # more than the api's u32
    {"api": {"eventMaxAgeDays": -1}},
    {"api": {"kafkaQueueKbytes": 0}},
    {"processor": {"batchMaxBytes": 0}},
    {"processor": {"kafkaFetchMaxKbytes": 2097152}},  # librdkafka's maximum is 2097151
    {"processor": {"batchMaxBytes": "16Mi"}},        # bytes, as a number
    {"api": {"readAuth": "open"}},                   # not a value: reads always need a key
    {"api": {"ingestAuth": "none"}},
    {"api": {"cookieSecure": "yes"}},
    {"api": {"keyCacheSeconds": -1}},
    {"api": {"sessionSecret": {"value": "inline-secret"}}},  # only by Secret
    {"api": {"sessionSecret": {"existingSecret": "s", "key": ""}}},
    {"api": {"networkPolicy": {"queryNamespaces": ["Not_A_Namespace"]}}},
    {"api": {"networkPolicy": {"queryNamespaces": "reporting"}}},
    {"api": {"networkPolicy": {"allowAll": True}}},
])
def test_schema_rejects_bad_values(bad):
    with pytest.raises(helm_python.HelmValuesError):
        helmlib.chart().validate_schema(bad)


@pytest.mark.parametrize("values, message", [
    ({"postgresql": {"enabled": False}}, "externalDatabase.existingSecret"),
    ({"kafka": {"enabled": False}}, "externalKafka.brokers"),
    ({"kafka": {"enabled": False}, "externalKafka": {"brokers": "k:9092", "securityProtocol": "sasl_ssl"}}, "sasl"),
])
def test_missing_external_settings_fail_with_a_clear_message(values, message):
    with pytest.raises(helm_python.HelmError) as err:
        helmlib.render(values)
    assert message in str(err.value)


@pytest.mark.parametrize("values, message", [
    ({"api": {"http": {"requestTimeoutSeconds": 5}}}, "api.http.requestTimeoutSeconds (5) must be longer than INGEST_TIMEOUT_MS (5000 ms)"),
    ({"api": {"http": {"requestTimeoutSeconds": 30}, "extraEnv": [{"name": "INGEST_TIMEOUT_MS", "value": "30000"}]}},
     "api.http.requestTimeoutSeconds (30) must be longer than INGEST_TIMEOUT_MS (30000 ms)"),
])
def test_a_request_timeout_within_the_ingest_timeout_fails_at_render(values, message):
    # The api would refuse to start (a crash loop); say it at install time instead.
    with pytest.raises(helm_python.HelmError) as err:
        helmlib.render(values)
    assert message in str(err.value)


def test_a_request_timeout_over_a_custom_ingest_timeout_renders():
    docs = helmlib.render({"api": {"http": {"requestTimeoutSeconds": 10}, "extraEnv": [{"name": "INGEST_TIMEOUT_MS", "value": "2000"}]}})
    assert helmlib.by_component(docs, "Deployment", "api")


def test_notes_give_the_port_forward_command():
    notes = helmlib.render_files({})["analytics/templates/NOTES.txt"]
    assert "kubectl -n analytics port-forward svc/analytics-api 8080:8080" in notes
    assert "helm test analytics" in notes


def test_notes_tell_how_to_get_access():
    notes = helmlib.render_files({})["analytics/templates/NOTES.txt"]
    admin = "kubectl -n analytics exec deploy/analytics-api -c api -- analytics-admin"
    # Register a site, then the first admin key and a read key.
    assert f"{admin} sites add site-1" in notes
    assert f"{admin} keys create --name ops --scope admin" in notes
    assert f"{admin} keys create --name dashboard --scope read" in notes
    assert notes.index("sites add") < notes.index("--scope admin") < notes.index("--scope read")
    # The key is the last line, shown once.
    assert "LAST line of its output" in notes and "only\n   that once" in notes
    # The dashboard: port-forward, then paste a read key at /login.
    assert "http://localhost:8080/login and paste a read (or admin) key" in notes
    assert 'curl -H "Authorization: Bearer $READ_KEY"' in notes
    # A shared link.
    assert f"{admin} links create --site site-1" in notes and "/share/<token>" in notes
    # Registered sites only, by default; no ingest key then.
    assert "only registered sites may send" in notes and "--scope ingest" not in notes
    assert "$INGEST_KEY" not in notes
    notes = helmlib.render_files({"api": {"ingestAuth": "key"}})["analytics/templates/NOTES.txt"]
    assert f"{admin} keys create --name tracker --scope ingest --site site-1" in notes
    assert '-H "Authorization: Bearer $INGEST_KEY"' in notes
