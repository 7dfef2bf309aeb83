"""Every rendered object validates: core kinds against the Kubernetes OpenAPI
schemas (strict: unknown fields are errors), custom resources against the
operators' CRDs in k8s/crds (also strict)."""

import kubernetes_validate
import pytest

import helmlib


def test_crd_schemas_are_present():
    # Never skipped: without them the custom resources would go unchecked.
    schemas = helmlib.crd_schemas()
    for key in [
        ("kafka.strimzi.io/v1", "Kafka"), ("kafka.strimzi.io/v1", "KafkaNodePool"),
        ("kafka.strimzi.io/v1", "KafkaTopic"), ("kafka.strimzi.io/v1", "KafkaUser"),
        ("postgresql.cnpg.io/v1", "Cluster"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
    ]:
        assert key in schemas, key


@pytest.mark.parametrize("k8s_version", helmlib.K8S_VERSIONS)
def test_core_objects_validate_strict(rendered, k8s_version):
    name, docs = rendered
    core = [d for d in docs if not helmlib.is_custom(d)]
    assert core
    for doc in core:
        try:
            kubernetes_validate.validate(doc, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']} invalid for {k8s_version}: {err.message} at {list(err.path)}")


def test_custom_resources_validate_against_crds(rendered):
    name, docs = rendered
    custom = [d for d in docs if helmlib.is_custom(d)]
    assert custom
    failures = {f"{d['kind']}/{d['metadata']['name']}": helmlib.validate_custom(d) for d in custom}
    assert {k: v for k, v in failures.items() if v} == {}, name


def test_strict_crd_validation_catches_unknown_fields():
    # Guards the validator itself: a typo must not pass silently.
    docs = helmlib.render_set("defaults")
    kafka = helmlib.one(docs, "Kafka")
    kafka["spec"]["kafka"]["listners"] = []
    assert any("listners" in e for e in helmlib.validate_custom(kafka))
    topic = helmlib.find(docs, "KafkaTopic")[0]
    topic["spec"]["partitions"] = 0
    assert helmlib.validate_custom(topic)


def test_strict_core_validation_catches_unknown_fields():
    docs = helmlib.render_set("defaults")
    dep = helmlib.by_component(docs, "Deployment", "api")
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, helmlib.K8S_VERSIONS[0], strict=True)
