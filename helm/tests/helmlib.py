"""Shared helpers: render the chart with the Helm 4 library, and validate objects.

Rendering goes through helm-python-sdk (Helm 4's Go engine, no helm binary and
no cluster), so what is tested is what `helm template` would produce.
"""

from __future__ import annotations

import copy
import functools
import pathlib
from typing import Any

import helm_python
import jsonschema
import yaml

TESTS_DIR = pathlib.Path(__file__).resolve().parent
CHART_DIR = TESTS_DIR.parent / "analytics"
REPO_DIR = TESTS_DIR.parent.parent
VALUES_DIR = TESTS_DIR / "values"
# The operators' CRDs, vendored unchanged (k8s/crds/README.md); a hard requirement.
CRDS_DIR = REPO_DIR / "k8s" / "crds"

RELEASE = "analytics"
NAMESPACE = "analytics"

# The value sets every structural test runs on: name -> files merged in order.
VALUE_SETS: dict[str, list[str]] = {
    "defaults": ["defaults.yaml"],
    "external": ["external.yaml"],
    "production": ["production.yaml"],
}

# Core kinds validated with kubernetes-validate; everything else must have a CRD.
K8S_VERSIONS = ["1.30.0", "1.37.0"]


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_values(*files: str, overrides: dict | None = None) -> dict:
    values: dict = {}
    for name in files:
        loaded = yaml.safe_load((VALUES_DIR / name).read_text()) or {}
        values = deep_merge(values, loaded)
    return deep_merge(values, overrides or {})


@functools.lru_cache(maxsize=1)
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(str(CHART_DIR))


def render_files(values: dict) -> dict[str, str]:
    """Template path -> rendered text, as an install (is_install) would produce."""
    c = chart()
    # Helm validates the values against values.schema.json on install; do the same.
    c.validate_schema(values)
    return c.render(values, name=RELEASE, namespace=NAMESPACE, revision=1, is_install=True)


def render(values: dict) -> list[dict[str, Any]]:
    """Every object the chart renders (hooks and test pods included)."""
    docs = []
    for path, text in sorted(render_files(values).items()):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


def render_set(name: str, overrides: dict | None = None) -> list[dict[str, Any]]:
    return render(load_values(*VALUE_SETS[name], overrides=overrides))


def find(docs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def by_component(docs: list[dict], kind: str, component: str) -> dict:
    found = [
        d for d in find(docs, kind)
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} for component {component}, got {len(found)}"
    return found[0]


# --- custom resources ------------------------------------------------------


def _strict(schema: Any) -> Any:
    """Reject unknown fields like `kubectl apply --validate=strict` does.

    A structural schema prunes fields it does not declare; an object node with
    `properties` and neither `additionalProperties` nor
    `x-kubernetes-preserve-unknown-fields` therefore accepts nothing else.
    Branches of anyOf/oneOf only add constraints, so they are left as they are.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _strict(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = _strict(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(out["additionalProperties"])
    return out


@functools.lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON schema, from k8s/crds."""
    if not CRDS_DIR.is_dir():
        raise FileNotFoundError(f"CRD schemas not found at {CRDS_DIR} (see k8s/crds/README.md)")
    schemas: dict[tuple[str, str], dict] = {}
    for path in sorted(CRDS_DIR.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group = doc["spec"]["group"]
            kind = doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served"):
                    schemas[(f"{group}/{version['name']}", kind)] = _strict(
                        version["schema"]["openAPIV3Schema"]
                    )
    if not schemas:
        raise FileNotFoundError(f"no CustomResourceDefinition in {CRDS_DIR}")
    return schemas


def validate_custom(doc: dict) -> list[str]:
    key = (doc["apiVersion"], doc["kind"])
    schema = crd_schemas().get(key)
    if schema is None:
        return [f"no served CRD version for {key}"]
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(doc)
    ]
    # metadata is `type: object` in CRDs; hold it to ObjectMeta's basic rules.
    name = doc["metadata"].get("name", "")
    if not jsonschema.Draft7Validator({"pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}).is_valid(name):
        errors.append(f"metadata.name {name!r} is not a DNS subdomain")
    for field in ("labels", "annotations"):
        for k, v in (doc["metadata"].get(field) or {}).items():
            if not isinstance(v, str):
                errors.append(f"metadata.{field}.{k} is not a string")
    return errors


def is_custom(doc: dict) -> bool:
    return any(doc["apiVersion"].startswith(g) for g in ("kafka.strimzi.io/", "postgresql.cnpg.io/", "monitoring.coreos.com/"))
