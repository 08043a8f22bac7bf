"""Role epns_monitor against a real Prometheus: the role installs the runner, Debian's node_exporter reads its
metrics file, Debian's Prometheus scrapes it every second with the rules the role installed (a copy with short
`for:`), and its HTTP API answers what an operator would ask.

agent1 and agent2 share one egress (the same eset_public_ip): with one sentinel per egress agent1 probes and agent2
only watches its own agent. The runs are started the way cron starts them (as the runner's user); the cron path
itself and the systemd units are part runner's tests (tests/integration/test_monitor_runner_lab.py).
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from _ansible import run_playbook, write_host_vars
from _monitor import PATHS, PLAYBOOK, RULES_DIR, USER, extra_vars, render_rules, run_now, start_prometheus
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.lab

LEFT_BEHIND = [*PATHS.values(), f"{RULES_DIR}/epns-alerts.yml", "/etc/cron.d/protectnet_epns_monitor",
               "/etc/systemd/system/epns-monitor.service", "/etc/systemd/system/epns-monitor.timer"]


def sh(lab: Any, host: str, command: List[str], check: bool = True) -> str:
    done = lab.run(host, command, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"{host}: {shlex.join(command)} -> {done.returncode}: {done.stderr}{done.stdout}")
    return str(done.stdout)


@pytest.fixture(scope="module")
def agents(lab: Any) -> List[str]:
    return lab.agents[:2]


@pytest.fixture(scope="module")
def monitoring(lab: Any, agents: List[str]) -> Iterator[Any]:
    running = start_prometheus(lab, agents[0])
    yield running
    lab.stop_prometheus(running)


def monitor(lab: Any, agents: List[str], work: Path, monitoring: Any, state: str = "present") -> Any:
    overlay = write_host_vars(work / "inventory", {name: {"eset_public_ip": "203.0.113.50"} for name in agents})
    extra = extra_vars(agents, agents[0], f"{monitoring.url}/-/reload", work, state,
                       epns_monitor_sentinels_per_egress=1)
    done = run_playbook(lab, PLAYBOOK, inventories=[overlay], extra_vars=extra)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done


def metrics_file(lab: Any, host: str) -> Dict[str, List[Any]]:
    text = sh(lab, host, ["cat", f"{PATHS['epns_monitor_textfile_dir']}/epns.prom"])
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def path_up(monitoring: Any, host: str, port: str) -> List[float]:
    return [s["value"] for s in monitoring.query(f'epns_path_up{{instance="{host}", port="{port}", via="direct"}}')]


def test_the_role_installs_a_sentinel_and_a_passive_host_under_their_own_user(lab: Any, agents: List[str],
                                                                              monitoring: Any,
                                                                              tmp_path: Path) -> None:
    done = monitor(lab, agents, tmp_path, monitoring)
    assert "1 active, 1 passive hosts in 1 egresses" in done.stdout
    assert "connections per second (cap 1)" in done.stdout
    for host in agents:
        entry = sh(lab, host, ["getent", "passwd", USER]).strip().split(":")
        assert entry[5] == PATHS["epns_monitor_state_dir"] and entry[6] == "/usr/sbin/nologin", entry
        assert sh(lab, host, ["stat", "-c", "%U %a", PATHS["epns_monitor_state_dir"]]).split() == [USER, "750"]
        assert sh(lab, host, ["stat", "-c", "%G %a", PATHS["epns_monitor_textfile_dir"]]).split() == [USER, "1775"]
        run_now(lab, host)
    again = monitor(lab, agents, tmp_path, monitoring)
    for host in agents:
        assert re.search(rf"{host}\s*: ok=\d+\s+changed=0\s", again.stdout), again.stdout[-1500:]
    sentinel, passive = (metrics_file(lab, host) for host in agents)
    assert any(s.labels["port"] == "8883" and s.value == 1 for s in sentinel["epns_path_up"])
    assert "epns_path_up" not in passive, "the passive host probed EPNS"
    assert {s.labels["mode"] for s in passive["epns_probe_mode_info"] if s.value == 1} == {"passive"}
    assert sh(lab, agents[0], ["stat", "-c", "%U %a", f"{PATHS['epns_monitor_textfile_dir']}/epns.prom"]).split() \
        == [USER, "644"]


def test_prometheus_answers_8883_up_then_the_fault_fires_the_alert(lab: Any, agents: List[str], monitoring: Any,
                                                                   tmp_path: Path) -> None:
    sentinel = agents[0]
    monitor(lab, agents, tmp_path, monitoring)
    run_now(lab, sentinel)
    assert monitoring.wait("epns_path_up 1 on 8883", lambda: path_up(monitoring, sentinel, "8883") == [1.0])
    assert {rule["name"] for rule in monitoring.rules()} >= {"EPNSPrimaryPortDown", "EPNSProbeStale"}
    try:
        lab.fault(sentinel, "block", port=8883)
        run_now(lab, sentinel)
        assert monitoring.wait("epns_path_up 0 on 8883", lambda: path_up(monitoring, sentinel, "8883") == [0.0])
        assert path_up(monitoring, sentinel, "443") == [1.0]

        def primary_down() -> List[Dict[str, Any]]:
            return [a for a in monitoring.alerts() if a["labels"]["alertname"] == "EPNSPrimaryPortDown"
                    and a["labels"]["instance"] == sentinel and a["state"] == "firing"]

        alert, = monitoring.wait("EPNSPrimaryPortDown firing", primary_down, timeout=60)
        assert alert["labels"]["class"] == "tcp_timeout" and alert["labels"]["stage"] == "tcp", alert
        assert alert["annotations"]["hint"] == render_rules.FAILURE_CLASSES["tcp_timeout"].hint
        assert "port 8883 fails at tcp (tcp_timeout)" in alert["annotations"]["summary"]
        fallback = [a for a in monitoring.alerts() if a["labels"]["alertname"] == "EPNSOnlyFallback"]
        assert [a["labels"]["instance"] for a in fallback] == [sentinel]
    finally:
        lab.clear(sentinel)
    run_now(lab, sentinel)
    assert monitoring.wait("epns_path_up 1 again", lambda: path_up(monitoring, sentinel, "8883") == [1.0])


def test_absent_leaves_nothing_behind(lab: Any, agents: List[str], monitoring: Any, tmp_path: Path) -> None:
    monitor(lab, agents, tmp_path, monitoring)
    monitor(lab, agents, tmp_path, monitoring, state="absent")
    for host in agents:
        left = [path for path in LEFT_BEHIND if lab.run(host, ["test", "-e", path]).returncode == 0]
        assert left == [], f"{host}: left behind {left}"
        assert lab.run(host, ["getent", "passwd", USER]).returncode == 2
        assert lab.run(host, ["getent", "group", USER]).returncode == 2
    monitoring.wait("the rules unloaded", lambda: not [r for r in monitoring.rules() if r["name"].startswith("EPNS")])
