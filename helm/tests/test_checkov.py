"""checkov (kubernetes framework) passes on the rendered manifests; every check
it skips is skipped by an annotation in the chart that carries the reason."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

import helmlib


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("rendered")
    for name in helmlib.VALUE_SETS:
        (root / name).mkdir()
        for doc in helmlib.render_set(name):
            (root / name / f"{doc['kind']}-{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc))
    # checkov lives in the same venv as this interpreter.
    exe = pathlib.Path(sys.executable).with_name("checkov")
    exe = str(exe) if exe.exists() else shutil.which("checkov")
    assert exe, "checkov is not installed (helm/tests/run.sh installs it)"
    proc = subprocess.run(
        [exe, "-d", str(root), "--framework", "kubernetes", "-o", "json", "--skip-download", "--compact"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.stdout, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    assert [r["check_type"] for r in reports] == ["kubernetes"], proc.stderr[-2000:]
    return reports[0]


def test_checkov_has_no_failures(checkov_report):
    summary = checkov_report["summary"]
    print("checkov:", summary)
    for name in sorted(helmlib.VALUE_SETS):
        counts = {
            kind: sum(1 for c in checkov_report["results"][f"{kind}_checks"] if c["file_path"].startswith(f"/{name}/"))
            for kind in ("passed", "failed", "skipped")
        }
        print(f"checkov {name}: {counts}")
    failed = [
        f"{c['check_id']} {c['check_name']} {c['file_path']}"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 0


def test_every_skip_carries_a_reason(checkov_report):
    skipped = checkov_report["results"]["skipped_checks"]
    by_check: dict[str, set[str]] = {}
    for c in skipped:
        reason = c["check_result"].get("suppress_comment", "")
        assert reason and reason != "No comment provided", (c["check_id"], c["file_path"])
        by_check.setdefault(c["check_id"], set()).add(reason)
    for check, reasons in sorted(by_check.items()):
        print(f"skipped {check} x{sum(1 for c in skipped if c['check_id'] == check)}: {sorted(reasons)}")
    # Only the documented skips, and only on workloads.
    assert set(by_check) <= {"CKV_K8S_15", "CKV_K8S_43", "CKV_K8S_35", "CKV_K8S_8", "CKV_K8S_9"}
