"""What the rendered objects say: probes, hardening, routing, hooks, secrets."""

import base64
import json
import shutil
import string

import helm_python
import pytest
import yaml

import helmlib

WORKLOADS = [("Deployment", "api"), ("Deployment", "processor"), ("Job", "migration")]


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def container(doc):
    containers = pod_spec(doc)["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def port_number(c, port):
    if isinstance(port, int):
        return port
    return {p["name"]: p["containerPort"] for p in c["ports"]}[port]


@pytest.mark.parametrize("component, probes", [
    ("api", {"startupProbe": ("/healthz", 8080), "livenessProbe": ("/healthz", 8080), "readinessProbe": ("/readyz", 8080)}),
    ("processor", {"startupProbe": ("/healthz", 9090), "livenessProbe": ("/healthz", 9090), "readinessProbe": ("/readyz", 9090)}),
])
def test_probes_on_real_paths_and_ports(rendered, component, probes):
    _, docs = rendered
    c = container(helmlib.by_component(docs, "Deployment", component))
    for probe, (path, port) in probes.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert port_number(c, get["port"]) == port, probe
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == ({"http": 8080, "metrics": 9090} if component == "api" else {"metrics": 9090})
    # The listen addresses the binaries get match the declared ports.
    env = env_of(c)
    assert env["METRICS_ADDR"]["value"] == "0.0.0.0:9090"
    if component == "api":
        assert env["HTTP_ADDR"]["value"] == "0.0.0.0:8080"
    assert c["command"] == [f"/usr/local/bin/analytics-{component}"]


@pytest.mark.parametrize("kind, component", WORKLOADS + [("Pod", "test")])
def test_security_context(rendered, kind, component):
    _, docs = rendered
    doc = helmlib.by_component(docs, kind, component)
    spec = doc["spec"] if kind == "Pod" else pod_spec(doc)
    assert spec["automountServiceAccountToken"] is False
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001 and psc["runAsGroup"] == 10001
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["requests"] and c["resources"]["limits"]
    if kind != "Pod":
        # /tmp is the only writable path, an emptyDir.
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container(doc)["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_service_account_token_not_mounted(rendered):
    _, docs = rendered
    assert helmlib.one(docs, "ServiceAccount")["automountServiceAccountToken"] is False


def test_services(rendered):
    _, docs = rendered
    api = helmlib.by_component(docs, "Service", "api")
    assert {(p["name"], p["port"], p["targetPort"]) for p in api["spec"]["ports"]} == {("http", 8080, "http"), ("metrics", 9090, "metrics")}
    proc = helmlib.by_component(docs, "Service", "processor")
    assert [(p["name"], p["port"], p["targetPort"]) for p in proc["spec"]["ports"]] == [("metrics", 9090, "metrics")]
    for svc, component in ((api, "api"), (proc, "processor")):
        dep = helmlib.by_component(docs, "Deployment", component)
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        assert dep["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]


@pytest.mark.parametrize("name", ["defaults", "production"])
def test_ingress_routes_only_ingest_paths(name):
    docs = helmlib.render_set(name)
    ing = helmlib.one(docs, "Ingress")
    api_svc = helmlib.by_component(docs, "Service", "api")["metadata"]["name"]
    for rule in ing["spec"]["rules"]:
        paths = {(p["path"], p["pathType"]) for p in rule["http"]["paths"]}
        assert paths == {("/events", "Exact"), ("/events/batch", "Exact")}
        for p in rule["http"]["paths"]:
            assert p["backend"]["service"] == {"name": api_svc, "port": {"name": "http"}}
    if name == "production":
        assert ing["spec"]["ingressClassName"] == "nginx"
        assert ing["spec"]["tls"] == [{"secretName": "analytics-ingest-tls", "hosts": ["ingest.example.com"]}]
        assert ing["spec"]["rules"][0]["host"] == "ingest.example.com"
    else:
        assert "tls" not in ing["spec"]


def test_migration_job_is_a_hook_that_waits_for_the_database(rendered):
    _, docs = rendered
    job = helmlib.by_component(docs, "Job", "migration")
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "post-install,pre-upgrade"
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert "helm.sh/hook-weight" in ann
    c = container(job)
    assert c["command"] == ["/usr/local/bin/analytics-migrate"] and c["args"] == ["up"]
    env = env_of(c)
    assert int(env["MIGRATE_WAIT_SECONDS"]["value"]) >= 120
    assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_helm_test_pod_checks_readyz_through_the_service(rendered):
    _, docs = rendered
    pod = helmlib.by_component(docs, "Pod", "test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    args = " ".join(pod["spec"]["containers"][0]["command"] + pod["spec"]["containers"][0]["args"])
    assert "http://analytics-api:8080/readyz" in args


def test_database_url_from_cloudnative_pg_app_secret():
    docs = helmlib.render_set("defaults")
    cluster = helmlib.one(docs, "Cluster")
    for kind, component in WORKLOADS:
        env = env_of(container(helmlib.by_component(docs, kind, component)))
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "analytics", "owner": "analytics"}


def test_external_database_and_kafka_from_user_secrets():
    docs = helmlib.render_set("external")
    for kind, component in WORKLOADS:
        env = env_of(container(helmlib.by_component(docs, kind, component)))
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "analytics-database", "key": "url"}
    cm = helmlib.one(docs, "ConfigMap")["data"]
    assert cm["KAFKA_BROKER_URLS"] == "kafka-0.example.internal:9094,kafka-1.example.internal:9094"
    assert cm["KAFKA_SECURITY_PROTOCOL"] == "sasl_ssl"
    assert cm["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512" and cm["KAFKA_SASL_USERNAME"] == "analytics"
    assert cm["KAFKA_SSL_CA_LOCATION"] == "/etc/analytics/kafka-ca/ca.crt"
    for component in ("api", "processor"):
        dep = helmlib.by_component(docs, "Deployment", component)
        c = container(dep)
        assert env_of(c)["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "analytics-kafka-credentials", "key": "password"}
        vols = {v["name"]: v for v in pod_spec(dep)["volumes"]}
        assert vols["kafka-ca"]["secret"]["secretName"] == "analytics-kafka-ca"
        assert {"name": "kafka-ca", "mountPath": "/etc/analytics/kafka-ca", "readOnly": True} in c["volumeMounts"]


def test_strimzi_kafka_kraft_with_topics():
    docs = helmlib.render_set("defaults")
    kafka = helmlib.one(docs, "Kafka")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    pool = helmlib.one(docs, "KafkaNodePool")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    topics = {t["spec"]["topicName"]: t for t in helmlib.find(docs, "KafkaTopic")}
    assert set(topics) == {"events", "events.dlq"}
    assert topics["events"]["spec"]["partitions"] == 6
    assert topics["events"]["spec"]["config"]["retention.ms"] == 604800000
    cm = helmlib.one(docs, "ConfigMap")["data"]
    assert cm["KAFKA_BROKER_URLS"] == f"{kafka['metadata']['name']}-kafka-bootstrap:9092"
    assert (cm["KAFKA_TOPIC"], cm["KAFKA_DLQ_TOPIC"], cm["KAFKA_GROUP_ID"]) == ("events", "events.dlq", "processor-group")
    assert cm["KAFKA_SECURITY_PROTOCOL"] == "plaintext" and cm["LOG_FORMAT"] == "json"


def test_scram_kafka_user_and_tls_listener():
    docs = helmlib.render_set("production")
    kafka = helmlib.one(docs, "Kafka")
    listener = kafka["spec"]["kafka"]["listeners"][0]
    assert listener["tls"] is True and listener["authentication"] == {"type": "scram-sha-512"}
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] == 3
    user = helmlib.one(docs, "KafkaUser")
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
    acl_names = {a["resource"].get("name") for a in user["spec"]["authorization"]["acls"]}
    assert {"events", "events.dlq", "processor-group"} <= acl_names
    cm = helmlib.one(docs, "ConfigMap")["data"]
    assert cm["KAFKA_SECURITY_PROTOCOL"] == "sasl_ssl"
    assert cm["KAFKA_SASL_USERNAME"] == user["metadata"]["name"]
    assert cm["KAFKA_BROKER_URLS"].endswith("-kafka-bootstrap:9093")
    for component in ("api", "processor"):
        dep = helmlib.by_component(docs, "Deployment", component)
        assert env_of(container(dep))["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": user["metadata"]["name"], "key": "password"}
        vols = {v["name"]: v for v in pod_spec(dep)["volumes"]}
        assert vols["kafka-ca"]["secret"]["secretName"] == f"{kafka['metadata']['name']}-cluster-ca-cert"


def test_hpa_pdb_and_replicas():
    prod = helmlib.render_set("production")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in helmlib.find(prod, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"analytics-api", "analytics-processor"}
    assert hpas["analytics-api"]["spec"]["minReplicas"] == 3
    # With an HPA the Deployment leaves replicas to it.
    assert "replicas" not in helmlib.by_component(prod, "Deployment", "api")["spec"]
    assert helmlib.by_component(prod, "PodDisruptionBudget", "api")["spec"]["minAvailable"] == 2
    defaults = helmlib.render_set("defaults")
    assert helmlib.by_component(defaults, "Deployment", "api")["spec"]["replicas"] == 2
    assert helmlib.by_component(defaults, "PodDisruptionBudget", "api")["spec"]["maxUnavailable"] == 1


def test_service_monitors_scrape_the_metrics_ports(rendered):
    _, docs = rendered
    for component in ("api", "processor"):
        sm = helmlib.by_component(docs, "ServiceMonitor", component)
        svc = helmlib.by_component(docs, "Service", component)
        assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert sm["spec"]["endpoints"][0]["port"] == "metrics" and sm["spec"]["endpoints"][0]["path"] == "/metrics"
        assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}


def test_prometheus_rule_alerts():
    docs = helmlib.render_set("defaults")
    rules = [r for g in helmlib.one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    exprs = {r["alert"]: r["expr"] for r in rules}
    assert "analytics_processor_lag_seconds" in exprs["AnalyticsProcessorLagHigh"]
    assert "analytics_processor_lag_messages" in exprs["AnalyticsProcessorLagMessagesHigh"]
    assert 'status=~"5.."' in exprs["AnalyticsApiHighErrorRate"] and "analytics_http_requests_total" in exprs["AnalyticsApiHighErrorRate"]
    assert "up{" in exprs["AnalyticsApiTargetDown"] and "up{" in exprs["AnalyticsProcessorTargetDown"]
    assert "kube_deployment_status_replicas_unavailable" in exprs["AnalyticsPodsNotReady"]
    # The job label of a ServiceMonitor target is the Service name.
    assert 'job="analytics-api"' in exprs["AnalyticsApiHighErrorRate"]
    assert all(r["labels"]["severity"] in ("warning", "critical") for r in rules)


def test_prometheus_rule_alerts_on_limits_and_dead_letters():
    docs = helmlib.render_set("defaults")
    rules = {r["alert"]: r for g in helmlib.one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    proc, api = 'job="analytics-processor",namespace="analytics"', 'job="analytics-api",namespace="analytics"'
    # alert -> (metric and selector in the expression, what it is compared to, for, severity)
    want = {
        "AnalyticsDeadLettersFailing": (f"analytics_processor_dead_letter_failing{{{proc}}}", ") > 0", "2m", "critical"),
        "AnalyticsEventsRefused": (f"increase(analytics_processor_refused_total{{{proc}}}[15m])", ") > 0", None, "warning"),
        "AnalyticsClientsRateLimited": (f"rate(analytics_rate_limited_total{{{api}}}[5m])", ") > 1", "10m", "warning"),
        "AnalyticsApiLoadShedding": (f"rate(analytics_http_shed_total{{{api}}}[5m])", ") > 0", "5m", "warning"),
        "AnalyticsApiConnectionLimitReached": (f"increase(analytics_http_connection_limit_reached_total{{{api}}}[5m])", ") > 0", None, "warning"),
    }
    for alert, (selector, compare, duration, severity) in want.items():
        rule = rules[alert]
        assert selector in rule["expr"], (alert, rule["expr"])
        assert rule["expr"].rstrip().endswith(compare), (alert, rule["expr"])
        assert rule.get("for") == duration, alert
        assert rule["labels"]["severity"] == severity, alert
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], alert
    # The 429 threshold is a value.
    docs = helmlib.render({"metrics": {"prometheusRule": {"rateLimitedPerSecondThreshold": 25}}})
    rules = {r["alert"]: r for g in helmlib.one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    assert rules["AnalyticsClientsRateLimited"]["expr"].rstrip().endswith(") > 25")


# The binaries' own defaults (api/src/config.rs, processor/src/config.rs), which
# the chart passes on unchanged: only TRUSTED_PROXIES differs (see below).
API_LIMITS = {
    "HTTP_MAX_CONNECTIONS": "4096",
    "HTTP_HEADER_TIMEOUT_SECONDS": "10",
    "HTTP_BODY_TIMEOUT_SECONDS": "10",
    "HTTP_REQUEST_TIMEOUT_SECONDS": "30",
    "HTTP_MAX_IN_FLIGHT": "1024",
    "RATE_LIMIT_ADDRESS_PER_SECOND": "1000",
    "RATE_LIMIT_ADDRESS_BURST": "2000",
    "RATE_LIMIT_SITE_EVENTS_PER_SECOND": "20000",
    "RATE_LIMIT_SITE_BURST": "200000",
    "EVENT_MAX_AGE_DAYS": "1096",
    "KAFKA_QUEUE_KBYTES": "65536",
}
PROCESSOR_LIMITS = {"BATCH_MAX_BYTES": "16777216", "KAFKA_FETCH_MAX_KBYTES": "16384"}
PRIVATE_RANGES = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def test_limits_reach_each_binary_and_only_it(rendered):
    _, docs = rendered
    api = env_of(container(helmlib.by_component(docs, "Deployment", "api")))
    proc = env_of(container(helmlib.by_component(docs, "Deployment", "processor")))
    assert {k: api[k]["value"] for k in API_LIMITS} == API_LIMITS
    assert api["TRUSTED_PROXIES"]["value"] == PRIVATE_RANGES
    assert {k: proc[k]["value"] for k in PROCESSOR_LIMITS} == PROCESSOR_LIMITS
    # Each binary gets its own settings, not the other's (nor through the shared ConfigMap).
    assert not (set(API_LIMITS) | {"TRUSTED_PROXIES"}) & set(proc)
    assert not set(PROCESSOR_LIMITS) & set(api)
    cm = helmlib.one(docs, "ConfigMap")["data"]
    assert not (set(API_LIMITS) | set(PROCESSOR_LIMITS) | {"TRUSTED_PROXIES"}) & set(cm)


def test_limits_follow_the_values():
    docs = helmlib.render({
        "api": {
            "trustedProxies": "10.42.0.0/16",
            "http": {"maxConnections": 100, "headerTimeoutSeconds": 5, "bodyTimeoutSeconds": 7,
                     "requestTimeoutSeconds": 60, "maxInFlight": 50},
            "rateLimit": {"addressPerSecond": 0, "addressBurst": 0, "siteEventsPerSecond": 100000, "siteBurst": 1000000},
            "eventMaxAgeDays": 0,
            "kafkaQueueKbytes": 131072,
        },
        "processor": {"batchMaxBytes": 33554432, "kafkaFetchMaxKbytes": 65536},
    })
    api = {k: v.get("value") for k, v in env_of(container(helmlib.by_component(docs, "Deployment", "api"))).items()}
    assert api["TRUSTED_PROXIES"] == "10.42.0.0/16"
    assert (api["HTTP_MAX_CONNECTIONS"], api["HTTP_HEADER_TIMEOUT_SECONDS"], api["HTTP_BODY_TIMEOUT_SECONDS"],
            api["HTTP_REQUEST_TIMEOUT_SECONDS"], api["HTTP_MAX_IN_FLIGHT"]) == ("100", "5", "7", "60", "50")
    assert (api["RATE_LIMIT_ADDRESS_PER_SECOND"], api["RATE_LIMIT_ADDRESS_BURST"],
            api["RATE_LIMIT_SITE_EVENTS_PER_SECOND"], api["RATE_LIMIT_SITE_BURST"]) == ("0", "0", "100000", "1000000")
    assert (api["EVENT_MAX_AGE_DAYS"], api["KAFKA_QUEUE_KBYTES"]) == ("0", "131072")
    proc = {k: v.get("value") for k, v in env_of(container(helmlib.by_component(docs, "Deployment", "processor"))).items()}
    # Large numbers stay integers (not 3.3554432e+07).
    assert (proc["BATCH_MAX_BYTES"], proc["KAFKA_FETCH_MAX_KBYTES"]) == ("33554432", "65536")
    # An empty list trusts nobody, and is passed on as such.
    docs = helmlib.render({"api": {"trustedProxies": ""}})
    assert env_of(container(helmlib.by_component(docs, "Deployment", "api")))["TRUSTED_PROXIES"]["value"] == ""


def test_retention_reaches_the_processor_only():
    docs = helmlib.render({})
    proc = env_of(container(helmlib.by_component(docs, "Deployment", "processor")))
    api = env_of(container(helmlib.by_component(docs, "Deployment", "api")))
    # Kept forever unless asked: the processor's maintenance runs it (the api does not in Kafka mode).
    assert (proc["RETENTION_DAYS"]["value"], proc["RETENTION_ROLLUPS"]["value"]) == ("0", "keep")
    assert "RETENTION_DAYS" not in api
    docs = helmlib.render({"processor": {"retentionDays": 400, "retentionRollups": "drop"}})
    proc = env_of(container(helmlib.by_component(docs, "Deployment", "processor")))
    assert (proc["RETENTION_DAYS"]["value"], proc["RETENTION_ROLLUPS"]["value"]) == ("400", "drop")


def test_extra_env_comes_after_the_chart_settings():
    # Kubernetes takes the last of two entries with one name: extraEnv overrides.
    docs = helmlib.render({"api": {"extraEnv": [{"name": "HTTP_MAX_IN_FLIGHT", "value": "7"}]}})
    names = [e["name"] for e in container(helmlib.by_component(docs, "Deployment", "api"))["env"]]
    assert names.index("HTTP_MAX_IN_FLIGHT") < len(names) - 1 and names[-1] == "HTTP_MAX_IN_FLIGHT"


def test_trusted_proxies_default_is_the_private_ranges():
    import ipaddress
    values = helmlib.load_values("defaults.yaml")
    docs = helmlib.render(values)
    raw = env_of(container(helmlib.by_component(docs, "Deployment", "api")))["TRUSTED_PROXIES"]["value"]
    nets = [ipaddress.ip_network(n.strip()) for n in raw.split(",")]
    # An in-cluster Ingress controller's pod address is private, so it is trusted...
    for addr in ("10.244.1.7", "172.17.0.3", "192.168.49.2", "fd00:10:244::5"):
        assert any(ipaddress.ip_address(addr) in n for n in nets), addr
    # ...and nothing public is: a client on the internet cannot claim another's address.
    for addr in ("1.2.3.4", "100.64.0.1", "8.8.8.8", "2001:db8::1", "172.32.0.1"):
        assert not any(ipaddress.ip_address(addr) in n for n in nets), addr
    # values.yaml says why, and that operators should narrow it.
    text = (helmlib.CHART_DIR / "values.yaml").read_text()
    comment = text[text.index("# TRUSTED_PROXIES"):text.index("  trustedProxies:")]
    assert "Ingress" in comment and "rate-limit bucket" in comment and "narrow" in comment


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for unit, factor in units.items():
        if str(quantity).endswith(unit):
            return int(float(str(quantity)[: -len(unit)]) * factor)
    return int(quantity)


def test_memory_requests_hold_the_byte_bounds():
    # The arithmetic of values.yaml's comments: what the binaries may hold by
    # their own bounds, plus the measured working set, fits the request.
    values = helmlib.load_values("defaults.yaml")
    docs = helmlib.render(values)
    MiB, MB = 2**20, 10**6
    api = container(helmlib.by_component(docs, "Deployment", "api"))
    api_env = env_of(api)
    api_bound = int(api_env["KAFKA_QUEUE_KBYTES"]["value"]) * 1024 + 60 * MB
    assert api_bound <= _bytes(api["resources"]["requests"]["memory"]) <= _bytes(api["resources"]["limits"]["memory"])
    proc = container(helmlib.by_component(docs, "Deployment", "processor"))
    proc_env = env_of(proc)
    lanes = 2  # WRITER_LANES default
    dlq_queue = 16 * MiB  # the dead-letter producer's fixed bound
    proc_bound = (int(proc_env["KAFKA_FETCH_MAX_KBYTES"]["value"]) * 1024
                  + int(proc_env["BATCH_MAX_BYTES"]["value"]) * lanes * 2 + dlq_queue + 50 * MB)
    assert proc_bound <= _bytes(proc["resources"]["requests"]["memory"]) <= _bytes(proc["resources"]["limits"]["memory"])


def test_network_policies_cover_every_pod(rendered):
    _, docs = rendered
    policies = helmlib.find(docs, "NetworkPolicy")
    pods = [(k, c) for k, c in WORKLOADS + [("Pod", "test")]]
    for kind, component in pods:
        doc = helmlib.by_component(docs, kind, component)
        labels = doc["metadata"]["labels"] if kind == "Pod" else doc["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert matching, component
        assert all(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in matching)
    api = helmlib.by_component(docs, "NetworkPolicy", "api")
    assert {pp["port"] for r in api["spec"]["ingress"] for pp in r["ports"]} == {"http", "metrics"}
    proc = helmlib.by_component(docs, "NetworkPolicy", "processor")
    assert {pp["port"] for r in proc["spec"]["ingress"] for pp in r["ports"]} == {"metrics"}
    assert "ingress" not in helmlib.by_component(docs, "NetworkPolicy", "migration")["spec"]


def test_external_kafka_ports_opened_in_network_policy():
    docs = helmlib.render_set("external")
    egress = helmlib.by_component(docs, "NetworkPolicy", "processor")["spec"]["egress"]
    ports = {p["port"] for rule in egress for p in rule.get("ports", [])}
    assert {53, 5432, 9094} <= ports


def test_config_checksum_rolls_pods_on_change():
    def checksum(values, component):
        dep = helmlib.by_component(helmlib.render(values), "Deployment", component)
        return dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    for component in ("api", "processor"):
        base = checksum({}, component)
        assert base == checksum({}, component)
        assert base != checksum({"config": {"rustLog": "debug"}}, component)


def test_image_digest_pins_the_image():
    digest = "sha256:" + "a" * 64
    docs = helmlib.render({"image": {"digest": digest}})
    for kind, component in WORKLOADS:
        doc = helmlib.by_component(docs, kind, component)
        assert container(doc)["image"] == f"analytics@{digest}"
        assert "CKV_K8S_43" not in " ".join(doc["metadata"]["annotations"].values())


def test_graceful_shutdown_fits_the_termination_grace(rendered):
    _, docs = rendered
    for component in ("api", "processor"):
        dep = helmlib.by_component(docs, "Deployment", component)
        grace = int(helmlib.one(docs, "ConfigMap")["data"]["SHUTDOWN_GRACE_SECONDS"])
        assert pod_spec(dep)["terminationGracePeriodSeconds"] > grace


# --- access: session secret, settings, READ_AUTH, NetworkPolicy ------------


def test_session_secret_is_a_generated_secret_passed_by_reference():
    docs = helmlib.render_set("defaults")
    secret = helmlib.one(docs, "Secret")
    assert secret["metadata"]["name"] == "analytics-session" and secret["type"] == "Opaque"
    assert set(secret["data"]) == {"session-secret"}
    value = base64.b64decode(secret["data"]["session-secret"]).decode()
    # 64 random alphanumerics: well over the api's 32-byte minimum.
    assert len(value) == 64 and set(value) <= set(string.ascii_letters + string.digits), value
    api = env_of(container(helmlib.by_component(docs, "Deployment", "api")))
    assert api["SESSION_SECRET"] == {"name": "SESSION_SECRET", "valueFrom": {"secretKeyRef": {"name": "analytics-session", "key": "session-secret"}}}
    # Only the api signs sessions.
    for kind, component in WORKLOADS[1:]:
        assert "SESSION_SECRET" not in env_of(container(helmlib.by_component(docs, kind, component))), component


def test_an_offline_render_changes_the_session_secret_only():
    # Without a cluster, lookup finds nothing and the value is new on every
    # render; nothing else may follow it (no checksum in the pod template), or
    # each offline render (helm template, Argo CD) would roll the pods.
    first, second = helmlib.render_set("defaults"), helmlib.render_set("defaults")
    assert helmlib.one(first, "Secret")["data"] != helmlib.one(second, "Secret")["data"]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    rest = lambda docs: sorted((json.dumps(d, sort_keys=True) for d in docs if d["kind"] != "Secret"))  # noqa: E731
    assert rest(first) == rest(second)
    assert sorted(map(key, first)) == sorted(map(key, second))


LOOKUP = 'lookup "v1" "Secret" (include "analytics.namespace" .) $name'


@pytest.mark.parametrize("in_cluster, kept", [
    # The Secret of an earlier install: its value stays.
    ('(dict "apiVersion" "v1" "kind" "Secret" "data" (dict "session-secret" "a2VwdC1hY3Jvc3MtdXBncmFkZXM="))', True),
    # No Secret yet (install), or one without the key: a new random value.
    ("(dict)", False),
    ('(dict "data" (dict "other" "eA=="))', False),
])
def test_session_secret_keeps_the_value_in_the_cluster(tmp_path, in_cluster, kept):
    # Offline rendering has no cluster for lookup to read, so the chart is
    # rendered from a copy whose lookup answers what a cluster would.
    chart = tmp_path / "analytics"
    shutil.copytree(helmlib.CHART_DIR, chart)
    template = chart / "templates" / "secret.yaml"
    text = template.read_text()
    assert text.count(LOOKUP) == 1, "secret.yaml no longer reads the Secret back with lookup"
    template.write_text(text.replace(LOOKUP, in_cluster))
    rendered = helm_python.Chart.load(str(chart)).render(
        {}, name=helmlib.RELEASE, namespace=helmlib.NAMESPACE, revision=2, is_upgrade=True)
    [secret] = [d for d in yaml.safe_load_all(rendered["analytics/templates/secret.yaml"]) if d]
    value = base64.b64decode(secret["data"]["session-secret"]).decode()
    if kept:
        assert value == "kept-across-upgrades"
    else:
        assert len(value) == 64 and value.isalnum(), value


def test_session_secret_from_an_existing_secret():
    docs = helmlib.render_set("production")
    assert helmlib.find(docs, "Secret") == []
    api = env_of(container(helmlib.by_component(docs, "Deployment", "api")))
    assert api["SESSION_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "analytics-session-secret", "key": "secret"}
    docs = helmlib.render({"api": {"sessionSecret": {"existingSecret": "mine"}}})
    assert helmlib.find(docs, "Secret") == []
    api = env_of(container(helmlib.by_component(docs, "Deployment", "api")))
    assert api["SESSION_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "session-secret"}


def test_access_settings_reach_the_api(rendered):
    _, docs = rendered
    api = env_of(container(helmlib.by_component(docs, "Deployment", "api")))
    assert api["READ_AUTH"]["value"] == "keys"
    assert api["INGEST_AUTH"]["value"] == "registered"
    assert api["COOKIE_SECURE"]["value"] == "auto"
    assert api["KEY_CACHE_SECONDS"]["value"] == "5"
    assert api["QUERY_CACHE_MB"]["value"] == "128"
    proc = env_of(container(helmlib.by_component(docs, "Deployment", "processor")))
    assert not {"READ_AUTH", "INGEST_AUTH", "COOKIE_SECURE", "KEY_CACHE_SECONDS"} & set(proc)
    assert not {"READ_AUTH", "INGEST_AUTH", "SESSION_SECRET"} & set(helmlib.one(docs, "ConfigMap")["data"])


def test_access_settings_follow_the_values():
    docs = helmlib.render({"api": {"ingestAuth": "registered-and-key", "cookieSecure": "always", "keyCacheSeconds": 30}})
    api = env_of(container(helmlib.by_component(docs, "Deployment", "api")))
    assert (api["INGEST_AUTH"]["value"], api["COOKIE_SECURE"]["value"], api["KEY_CACHE_SECONDS"]["value"]) == ("registered-and-key", "always", "30")
    assert api["READ_AUTH"]["value"] == "keys"


def test_reads_never_go_without_a_key():
    # READ_AUTH is not a value of the chart, and the last READ_AUTH the api
    # container gets (extraEnv comes last) is "keys" whatever is allowed through.
    values = yaml.safe_load((helmlib.CHART_DIR / "values.yaml").read_text())
    assert "readAuth" not in values["api"]
    schema = json.loads((helmlib.CHART_DIR / "values.schema.json").read_text())
    assert "readAuth" not in schema["properties"]["api"]["properties"]
    for extra in ([], [{"name": "READ_AUTH", "value": "keys"}], [{"name": "READ_AUTH", "value": " Keys "}]):
        docs = helmlib.render({"api": {"extraEnv": extra}})
        env = container(helmlib.by_component(docs, "Deployment", "api"))["env"]
        read_auth = [e for e in env if e["name"] == "READ_AUTH"]
        assert read_auth and read_auth[-1]["value"].strip().lower() == "keys"


@pytest.mark.parametrize("extra", [
    {"name": "READ_AUTH", "value": "open"},
    {"name": "READ_AUTH", "value": "OPEN"},
    {"name": "READ_AUTH", "value": ""},
    {"name": "READ_AUTH", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "READ_AUTH"}}},
])
def test_read_auth_open_through_extra_env_fails_at_render(extra):
    with pytest.raises(helm_python.HelmError) as err:
        helmlib.render({"api": {"extraEnv": [extra]}})
    assert "READ_AUTH" in str(err.value) and "without a key" in str(err.value)


def _http_peers(docs):
    policy = helmlib.by_component(docs, "NetworkPolicy", "api")
    [rule] = [r for r in policy["spec"]["ingress"] if {p["port"] for p in r["ports"]} == {"http"}]
    return rule["from"]


def _ns(name):
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def test_api_http_port_reachable_from_ingress_controller_and_own_namespace_only():
    # Ingest and reads share the http port: no `from` would open it to every
    # pod in the cluster. By default: the Ingress controller's namespace and
    # the release's own namespace (an empty podSelector: every pod of it).
    docs = helmlib.render_set("defaults")
    assert _http_peers(docs) == [_ns("ingress-nginx"), {"podSelector": {}}]
    # The metrics port is as before: metricsFrom, empty meaning every scraper.
    policy = helmlib.by_component(docs, "NetworkPolicy", "api")
    [metrics] = [r for r in policy["spec"]["ingress"] if {p["port"] for p in r["ports"]} == {"metrics"}]
    assert "from" not in metrics


def test_api_http_port_query_namespaces_and_extra_peers():
    docs = helmlib.render_set("production")
    assert _http_peers(docs) == [_ns("ingress-nginx"), {"podSelector": {}}, _ns("reporting")]
    policy = helmlib.by_component(docs, "NetworkPolicy", "api")
    [metrics] = [r for r in policy["spec"]["ingress"] if {p["port"] for p in r["ports"]} == {"metrics"}]
    assert metrics["from"] == [_ns("monitoring")]
    block = {"ipBlock": {"cidr": "10.0.0.0/24"}}
    docs = helmlib.render({
        "api": {"networkPolicy": {"ingressControllerNamespaces": ["traefik", "gateway"],
                                  "queryNamespaces": ["analytics", "reporting", "bi"]}},
        "networkPolicy": {"apiIngressFrom": [block]},
    })
    # The release's namespace (here "analytics") is not listed twice.
    assert _http_peers(docs) == [_ns("traefik"), _ns("gateway"), {"podSelector": {}}, _ns("reporting"), _ns("bi"), block]
    docs = helmlib.render({"api": {"networkPolicy": {"ingressControllerNamespaces": []}}})
    assert _http_peers(docs) == [{"podSelector": {}}]


def test_helm_test_pod_may_reach_the_api(rendered):
    # The test pod runs in the release's namespace, which the api admits
    # (an empty podSelector: every pod of the policy's namespace).
    _, docs = rendered
    assert {"podSelector": {}} in _http_peers(docs)
    assert helmlib.by_component(docs, "Pod", "test")["metadata"]["namespace"] == helmlib.NAMESPACE


def test_ingress_paths_are_the_ingest_paths_of_the_helper():
    # One list in _helpers.tpl (analytics.ingestPaths), one path a line.
    text = (helmlib.CHART_DIR / "templates" / "_helpers.tpl").read_text()
    block = text[text.index('define "analytics.ingestPaths"'):]
    block = block[:block.index("{{- end }}")]
    listed = [line[2:].strip() for line in block.splitlines() if line.startswith("- ")]
    assert listed == ["/events", "/events/batch"]
    docs = helmlib.render_set("defaults")
    paths = [p["path"] for p in helmlib.one(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"]]
    assert paths == listed
