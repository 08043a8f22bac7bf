"""epns_monitor_runner on a lab agent, through ansible: the runner installed by the module, run for real as its own
user (epns-probe --once), by the cron daemon of the agent, with an overlapping run skipped and counted, an
idle-cutting middlebox seen as an idle cut within one short hold, and state=absent leaving nothing behind.

The lab's agents share this machine's /opt and /var: the runner's directories go under the agent's private /run,
its configuration and cron entry into the agent's own /etc. The lab has no systemd as PID 1, so the systemd unit and
timer are checked statically (tests/unit/test_monitor_module.py, systemd-analyze verify); the cron path runs here.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from _ansible import PLAYBOOKS, run_playbook, write_host_vars
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.lab

USER = "epns-monitor"
BASE = "/run/pn-monitor"
PROM = f"{BASE}/textfile/epns.prom"
ENTRY = f"{BASE}/opt/bin/epns-probe"
ARGS = {"user": USER, "prefix": f"{BASE}/opt", "state_dir": f"{BASE}/state", "textfile_dir": f"{BASE}/textfile",
        "scheduler": "cron", "interval_minutes": 1, "allow_short_interval": True, "jitter_seconds": 0,
        "hold_seconds": 6, "keepalive_seconds": 4, "probe": {"timeout": 10, "connect_timeout": 3}}
WATCHED = ("/etc/protectnet-epns", "/etc/cron.d", BASE)


def runner(lab: Any, host: str, args: Dict[str, Any], check: bool = False) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pn-mon-") as work:
        overlay = write_host_vars(Path(work) / "inventory", {host: {"runner_args": args}})
        result_file = Path(work) / "results.json"
        done = run_playbook(lab, PLAYBOOKS / "monitor_runner.yml", inventories=[overlay],
                            args=["--check"] if check else [],
                            extra_vars={"runner_targets": host, "result_file": str(result_file)})
        if not result_file.exists():
            raise AssertionError(f"ansible-playbook wrote no results (rc={done.returncode}):\n{done.stdout[-4000:]}"
                                 f"\n{done.stderr[-4000:]}")
        result: Dict[str, Any] = json.loads(result_file.read_text())[host]
        return result


def as_user(lab: Any, host: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return lab.run(host, ["runuser", "-u", USER, "--", ENTRY, *argv], timeout=timeout)


def snapshot(lab: Any, host: str) -> List[str]:
    return lab.run(host, ["find", *WATCHED], timeout=30).stdout.splitlines()


def metrics(lab: Any, host: str) -> Dict[str, List[Tuple[Dict[str, str], float]]]:
    text = lab.run(host, ["cat", PROM], check=True).stdout
    found: Dict[str, List[Tuple[Dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def by_port(found: Dict[str, List[Tuple[Dict[str, str], float]]], name: str) -> Dict[str, float]:
    return {labels["port"]: v for labels, v in found.get(name, []) if labels.get("via") == "direct"}


def history(lab: Any, host: str) -> List[Dict[str, Any]]:
    text = lab.run(host, ["cat", f"{BASE}/state/history.jsonl"]).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _overlap(lab: Any, host: str, rec: Dict[str, Any]) -> None:
    """A hold run holds the lock for its hold; a run started meanwhile is skipped (exit 4) and counted."""
    holding = subprocess.Popen(lab.exec_argv(host, ["runuser", "-u", USER, "--", ENTRY, "--once", "--mode", "hold"]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    lock = f"{BASE}/state/run.lock"
    while time.monotonic() < deadline and lab.run(host, ["flock", "-n", lock, "true"]).returncode == 0:
        time.sleep(0.2)
    rec["overlapped"] = as_user(lab, host, "--once")
    out, err = holding.communicate(timeout=60)
    rec["holding"] = (holding.returncode, out, err)
    rec["after_overlap"] = metrics(lab, host)


def _cron(lab: Any, host: str, rec: Dict[str, Any]) -> None:
    """The agent's cron daemon runs the entry (every minute here) as the runner user."""
    before = len(history(lab, host))
    lab.start_service(host, "cron")
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and len(history(lab, host)) <= before:
            time.sleep(2)
        time.sleep(1)  # the history line is written before the metrics file
    finally:
        lab.stop_service(host, "cron")
    rec["cron_history"] = history(lab, host)[before:]
    rec["cron_owner"] = lab.run(host, ["stat", "-c", "%U %a", PROM]).stdout.strip()
    rec["cron_metrics"] = metrics(lab, host)


@pytest.fixture(scope="module")
def flow(lab: Any) -> Iterator[Dict[str, Any]]:
    host = lab.agents[0]
    lab.reset()
    lab.run(host, ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    rec: Dict[str, Any] = {"host": host, "empty": snapshot(lab, host)}
    try:
        rec["check"] = runner(lab, host, ARGS, check=True)
        rec["after_check"] = snapshot(lab, host)
        rec["install"] = runner(lab, host, ARGS)
        rec["again"] = runner(lab, host, ARGS)
        rec["help"] = as_user(lab, host, "--help")
        rec["direct"] = as_user(lab, host, "--once", "--mode", "mqtt", "--json")
        rec["direct_metrics"] = metrics(lab, host)
        lab.fault(host, "idle-cut", seconds=2)
        rec["cut"] = as_user(lab, host, "--once", "--mode", "hold")
        rec["cut_metrics"] = metrics(lab, host)
        lab.clear(host, "idle-cut")
        _overlap(lab, host, rec)
        _cron(lab, host, rec)
        rec["absent"] = runner(lab, host, {k: v for k, v in ARGS.items() if k in ("prefix", "state_dir",
                                                                                   "textfile_dir")} |
                               {"state": "absent"})
        rec["after_absent"] = snapshot(lab, host)
        yield rec
    finally:
        lab.reset()
        runner(lab, host, {"state": "absent", "prefix": ARGS["prefix"], "state_dir": ARGS["state_dir"],
                           "textfile_dir": ARGS["textfile_dir"]})
        lab.run(host, ["userdel", USER])


def test_check_mode_changes_nothing_and_the_install_is_idempotent(flow: Dict[str, Any]) -> None:
    assert flow["check"]["changed"] is True and not flow["check"].get("failed"), flow["check"].get("msg")
    assert flow["after_check"] == flow["empty"]
    assert flow["install"]["changed"] is True and not flow["install"].get("failed"), flow["install"].get("msg")
    assert flow["install"]["scheduler"] == "cron"
    assert flow["again"]["changed"] is False


def test_the_runner_runs_as_its_user_and_writes_the_metrics(flow: Dict[str, Any]) -> None:
    assert flow["help"].returncode == 0 and "exit codes" in flow["help"].stdout
    done = flow["direct"]
    assert done.returncode == 0, done.stdout + done.stderr
    printed = json.loads(done.stdout)
    assert printed["mode"] == "mqtt" and printed["result"]["verdict"] == "reachable"
    found = flow["direct_metrics"]
    assert by_port(found, "epns_path_up") == {"8883": 1.0, "443": 1.0}
    assert {labels["verdict"]: v for labels, v in found["epns_verdict"]}["reachable"] == 1
    client_ids = {s["detail"]["client_id"] for p in printed["result"]["paths"] for a in p["attempts"]
                  for s in a["stages"] if s["name"] == "mqtt"}
    assert client_ids and all(cid.startswith("pnprobe-") for cid in client_ids), client_ids


def test_an_idle_cut_shows_within_one_hold(flow: Dict[str, Any]) -> None:
    assert flow["cut"].returncode == 2, flow["cut"].stdout + flow["cut"].stderr
    found = flow["cut_metrics"]
    assert by_port(found, "epns_path_idle_cut") == {"8883": 1.0, "443": 1.0}
    # seen at the first keepalive ping (4 s idle) that got no answer within connect_timeout (3 s)
    assert 4 <= by_port(found, "epns_path_hold_survived_seconds")["443"] < 4 + 3 + 1
    failures = {(labels["port"], labels["class"], labels["stage"]) for labels, _v in found["epns_path_failure"]}
    assert ("443", "idle_dropped", "hold") in failures
    assert {labels["mode"]: v for labels, v in found["epns_probe_mode_info"]}["hold"] == 1


def test_an_overlapping_run_is_skipped_and_counted(flow: Dict[str, Any]) -> None:
    assert flow["overlapped"].returncode == 4, flow["overlapped"].stdout + flow["overlapped"].stderr
    assert "skipped: another run holds the lock" in flow["overlapped"].stdout
    assert flow["holding"][0] == 0, flow["holding"]
    skipped = flow["after_overlap"]["epns_probe_runs_skipped_total"]
    assert skipped == [({}, 1.0)]
    assert by_port(flow["after_overlap"], "epns_path_idle_cut") == {"8883": 0.0, "443": 0.0}


def test_cron_runs_the_runner_as_its_user(flow: Dict[str, Any]) -> None:
    assert flow["cron_history"], "cron did not run the runner within 150 s"
    assert flow["cron_history"][0]["verdict"] == "reachable"
    assert flow["cron_owner"] == f"{USER} 644"
    assert by_port(flow["cron_metrics"], "epns_path_up") == {"8883": 1.0, "443": 1.0}


def test_absent_leaves_nothing(flow: Dict[str, Any]) -> None:
    assert flow["absent"]["changed"] is True and not flow["absent"].get("failed"), flow["absent"].get("msg")
    assert flow["after_absent"] == flow["empty"]
