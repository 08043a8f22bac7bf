"""Hosts the collection's modules cannot run on (Windows and macOS agents from the ESET PROTECT inventory, marked
`epns_probe_supported: false`) leave every role's play with a message: nothing connects to them, the play does not
fail on them, and the fleet report lists them as not probed, never as failed or unreachable.

The stand-in Windows host gets an address nothing answers on: any task that tried to reach it would make it
unreachable and the run fail.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
from _ansible import REPO, run_playbook, write_host_vars

pytestmark = pytest.mark.lab

NOWHERE = "198.18.0.250"  # inside the lab's range, no host has it
WINDOWS = {"epns_probe_supported": False, "eset_os_family": "windows", "eset_os_name": "Microsoft Windows 11 Pro",
           "ansible_host": NOWHERE}


def _recap(stdout: str) -> Dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines() if " : ok=" in line}


def test_verify_probes_the_linux_host_and_lists_the_windows_one_as_not_probed(lab: Any, tmp_path: Path) -> None:
    linux, windows = lab.agents[:2]
    overlay = write_host_vars(tmp_path / "inventory", {windows: WINDOWS})
    done = run_playbook(lab, REPO / "playbooks" / "verify.yml", inventories=[overlay], extra_vars={
        "epns_targets": f"{linux},{windows}", "epns_verify_report_dir": str(tmp_path / "report")})
    assert done.returncode == 0, done.stdout[-3000:]
    recap = _recap(done.stdout)
    assert "unreachable=0" in recap[windows] and "failed=0" in recap[windows], recap
    assert "is not probed or changed: ESET PROTECT lists it as Microsoft Windows 11 Pro" in done.stdout

    report = json.loads((tmp_path / "report" / "epns-report.json").read_text())["report"]
    assert report["summary"] == {"reachable": 1, "degraded": 0, "unreachable": 0, "not_probed": 1, "total": 2}
    text = json.dumps(report)
    assert "Linux hosts only" in text and "no probe result" not in text


@pytest.mark.parametrize("playbook", ["firewall.yml", "proxy.yml", "wol.yml"])
def test_changing_roles_skip_the_windows_host_with_a_message(lab: Any, tmp_path: Path, playbook: str) -> None:
    windows = lab.agents[1]
    overlay = write_host_vars(tmp_path / "inventory", {windows: WINDOWS})
    done = run_playbook(lab, REPO / "playbooks" / playbook, inventories=[overlay], args=["--check"], extra_vars={
        "epns_targets": windows, "epns_proxy_targets": windows, "epns_wol_targets": windows,
        "epns_proxy_allowed_sources": ["198.18.0.0/15"], "epns_wol_destinations": ["239.255.0.9"],
        "epns_verify_report_dir": str(tmp_path / "report")})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "is not probed or changed" in done.stdout
    recap = _recap(done.stdout)
    assert "unreachable=0" in recap[windows] and "failed=0" in recap[windows] and "changed=0" in recap[windows]
