"""playbooks/verify.yml end to end: probe every agent, write the fleet report, fail the hosts it should."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Dict, List

import pytest
from _ansible import REPO, run_playbook

pytestmark = pytest.mark.lab

VERIFY = REPO / "playbooks" / "verify.yml"


def _verify(lab: Any, report_dir: Path, *args: str, **extra_vars: Any) -> Any:
    variables: Dict[str, Any] = {"epns_targets": "agents", "epns_verify_report_dir": str(report_dir)}
    variables.update(extra_vars)
    return run_playbook(lab, VERIFY, extra_vars=variables, args=args)


def _recap(stdout: str) -> Dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if " : ok=" in line}


def test_report_covers_every_host_and_failed_hosts_fail(lab: Any, tmp_path: Path) -> None:
    healthy, degraded, unreachable = lab.agents[:3]
    lab.fault(degraded, "block", port=8883)
    lab.fault(unreachable, "broker-down")
    done = _verify(lab, tmp_path)
    assert done.returncode == 2, done.stdout[-3000:]  # the unreachable host fails the play
    recap = _recap(done.stdout)
    assert "failed=1" in recap[unreachable] and "failed=0" in recap[healthy] and "failed=0" in recap[degraded]

    report = json.loads((tmp_path / "epns-report.json").read_text())
    text = json.dumps(report)
    for host in (healthy, degraded, unreachable):
        assert host in text
    assert report["report"]["summary"] == {"reachable": 1, "degraded": 1, "unreachable": 1, "not_probed": 0,
                                           "total": 3}
    assert f"{healthy}: reachable" in done.stdout
    assert f"{unreachable}: unreachable" in done.stdout

    suites = ET.parse(tmp_path / "epns-report.junit.xml").getroot()
    failures = [case.get("name", "") for case in suites.iter("testcase") if case.find("failure") is not None]
    assert any(unreachable in (case.get("classname", "") + case.get("name", ""))
               for case in suites.iter("testcase") if case.find("failure") is not None), failures

    cells: List[str] = []

    class Cells(HTMLParser):
        def handle_data(self, data: str) -> None:
            cells.append(data)

    Cells().feed((tmp_path / "epns-report.html").read_text())
    html_text = " ".join(cells)
    assert "tcp_timeout" in html_text and "tcp_refused" in html_text


def test_fail_on_degraded_and_never(lab: Any, tmp_path: Path) -> None:
    degraded = lab.agents[0]
    lab.fault(degraded, "block", port=8883, action="reject")
    strict = _verify(lab, tmp_path / "strict", epns_verify_fail_on="degraded")
    assert "failed=1" in _recap(strict.stdout)[degraded]
    lenient = _verify(lab, tmp_path / "lenient", epns_verify_fail_on="never")
    assert lenient.returncode == 0, lenient.stdout[-3000:]


def test_check_mode_probes_but_writes_nothing(lab: Any, tmp_path: Path) -> None:
    done = _verify(lab, tmp_path, "--check")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "reachable" in done.stdout
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_second_run_changes_nothing(lab: Any, tmp_path: Path) -> None:
    first = _verify(lab, tmp_path)
    second = _verify(lab, tmp_path)
    assert first.returncode == 0 and second.returncode == 0
    assert "changed=0" in _recap(second.stdout)[lab.agents[0]]


def test_bad_role_input_fails_before_any_probe(lab: Any, tmp_path: Path) -> None:
    done = _verify(lab, tmp_path, epns_verify_fail_on="sometimes")
    assert done.returncode != 0
    assert "epns_verify_fail_on" in done.stdout + done.stderr
    assert "Probe the EPNS paths" not in done.stdout


@pytest.mark.parametrize("traceback_display", ["never", "error"])
def test_a_failing_verdict_reads_as_the_verdict_not_as_a_crash(lab: Any, tmp_path: Path,
                                                               traceback_display: str) -> None:
    """ansible-core 2.19 prints a failed module's `exception` (with ANSIBLE_DISPLAY_TRACEBACK=error, a call stack
    captured inside the module): a host failed for its verdict must show the verdict and its cause, not a trace."""
    degraded = lab.agents[0]
    lab.fault(degraded, "block", port=8883, action="reject")
    done = run_playbook(lab, VERIFY, extra_vars={"epns_targets": degraded, "epns_verify_report_dir": str(tmp_path),
                                                 "epns_verify_fail_on": "degraded"},
                        env={"ANSIBLE_DISPLAY_TRACEBACK": traceback_display})
    output = done.stdout + done.stderr
    assert "failed=1" in _recap(done.stdout)[degraded]
    assert "An exception occurred" not in output
    # No stack from inside the module; with tracebacks on, Ansible's own controller stack is its choice.
    assert "_ansiballz" not in output and "epns_probe.py\", line" not in output, output[-3000:]
    if traceback_display == "never":
        assert "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1, errors
    assert "EPNS is degraded" in errors[0] and "8883 direct: tcp_refused" in errors[0], errors
    # The line tells what to change, not only what broke.
    assert "Fix:" in errors[0], errors
