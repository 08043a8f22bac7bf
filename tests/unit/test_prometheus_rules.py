"""The alerting rules and the Grafana dashboard of role epns_monitor: promtool checks and unit-tests the rules, every
metric they and the dashboard query is one the runner writes (the contract's names), every alert says what is wrong
and what to do."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "epns_monitor" / "files"
RULES = FILES / "epns-alerts.yml"
DASHBOARD = FILES / "epns-dashboard.json"
PROMTOOL_TESTS = sorted((ROOT / "tests" / "prometheus").glob("*-test.yml"))
sys.path.insert(0, str(ROOT / "tests" / "prometheus"))

import render_rules  # noqa: E402

# The runner's metrics (docs/monitoring.md "Metrics"; part runner writes them): name -> its labels.
PATH_LABELS = {"port", "via", "proxy"}
METRICS: t.Dict[str, t.Set[str]] = {
    "epns_path_up": PATH_LABELS,
    "epns_path_failure": PATH_LABELS | {"class", "stage"},
    "epns_path_stage_seconds": PATH_LABELS | {"stage"},
    "epns_path_last_success_timestamp_seconds": PATH_LABELS,
    "epns_path_hold_survived_seconds": PATH_LABELS,
    "epns_path_idle_cut": PATH_LABELS,
    "epns_tls_issuer_info": PATH_LABELS | {"issuer_sha256"},
    "epns_tls_interception_suspected": PATH_LABELS,
    "epns_verdict": {"verdict"},
    "epns_agent_connection_up": {"port", "via"},
    "epns_probe_last_run_timestamp_seconds": set(),
    "epns_probe_run_duration_seconds": set(),
    "epns_probe_runs_skipped_total": set(),
    "epns_probe_mode_info": {"mode"},
}
SCRAPE_LABELS = {"instance", "job"}
REQUIRED_ALERTS = {"EPNSPrimaryPortDown", "EPNSOnlyFallback", "EPNSIdleCut", "EPNSInterceptionSuspected",
                   "EPNSProbeStale"}
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")


def alerts() -> t.List[t.Dict[str, t.Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_exprs() -> t.List[str]:
    return [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]


def label_names(expr: str) -> t.Set[str]:
    """Labels an expression matches on or keeps: selectors, by/on/group_left lists."""
    names = set(re.findall(r"[{,]\s*([a-z_]+)\s*[=!]~?", expr))
    for group in re.findall(r"\b(?:by|on|group_left|ignoring)\s*\(([^)]*)\)", expr):
        names |= {name.strip() for name in group.split(",") if name.strip()}
    return names


def test_the_rules_file_is_the_generators_output() -> None:
    assert RULES.read_text() == render_rules.render(), "run: .venv/bin/python tests/prometheus/render_rules.py"


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    run = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in run.stdout


@needs_promtool
@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=[path.name for path in PROMTOOL_TESTS])
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    run = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True, check=False,
                         cwd=test_file.parent)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_promtool_unit_tests_catch_a_wrong_expectation(tmp_path: Path) -> None:
    broken = PROMTOOL_TESTS[0].read_text().replace("class: tcp_timeout", "class: tcp_refused", 1)
    rules_copy = tmp_path / "roles" / "epns_monitor" / "files"
    rules_copy.mkdir(parents=True)
    shutil.copy(RULES, rules_copy)
    (tmp_path / "tests" / "prometheus").mkdir(parents=True)
    (tmp_path / "tests" / "prometheus" / "broken-test.yml").write_text(broken)
    run = subprocess.run([PROMTOOL, "test", "rules", "broken-test.yml"], capture_output=True, text=True,
                         check=False, cwd=tmp_path / "tests" / "prometheus")
    assert run.returncode != 0 and "EPNSPrimaryPortDown" in run.stdout + run.stderr


def test_every_required_alert_is_there_and_tested() -> None:
    names = {rule["alert"] for rule in alerts()}
    assert names >= REQUIRED_ALERTS
    tested = {case["alertname"] for path in PROMTOOL_TESTS for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", [])}
    assert names == tested, f"alerts without a promtool test: {sorted(names - tested)}"


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_each_alert_has_a_summary_a_hint_and_a_severity(rule: t.Dict[str, t.Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"].strip() and rule["annotations"]["hint"].strip()


def test_the_class_hint_is_the_probes_hint_for_every_failure_class() -> None:
    hint = next(rule for rule in alerts() if rule["alert"] == "EPNSPrimaryPortDown")["annotations"]["hint"]
    for name, failure in render_rules.FAILURE_CLASSES.items():
        assert f'eq $labels.class "{name}" }}}}{failure.hint}{{{{' in hint, name


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_only_the_runners_metrics_and_labels_are_queried(source: str) -> None:
    exprs = [rule["expr"] for rule in alerts()] if source == "rules" else dashboard_exprs()
    used = {name for expr in exprs for name in render_rules.metric_names(expr)}
    assert used <= set(METRICS), f"unknown metrics: {sorted(used - set(METRICS))}"
    known_labels = set().union(*METRICS.values()) | SCRAPE_LABELS | {"alertname", "alertstate"}
    for expr in exprs:
        assert label_names(expr) <= known_labels, (expr, sorted(label_names(expr) - known_labels))


def test_the_dashboard_shows_every_metric_and_is_importable() -> None:
    document = json.loads(DASHBOARD.read_text())
    used = {name for expr in dashboard_exprs() for name in render_rules.metric_names(expr)}
    assert used == set(METRICS), f"metrics the dashboard does not show: {sorted(set(METRICS) - used)}"
    assert document["uid"] and document["title"] and document["schemaVersion"] >= 30
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    for panel in document["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
