"""verify.yml with ESET PROTECT as the inventory: the lab's hosts registered as devices in the API emulator, the
inventory built by protectnet.epns.eset_protect alone (no hand-written host list), the Linux agents probed, the
Windows and macOS stand-ins listed as not probed without a connection to them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from _ansible import BIN, REPO, ansible_env
from _eset_lab import STAND_INS, group_paths_of, inventory_sources, lab_members, seed_payload

sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator
from emulator.client import connection, control

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator("onprem") as emu:
        yield emu


@pytest.fixture()
def eset_sources(lab: Any, emulator: Emulator, tmp_path: Path) -> Dict[str, Any]:
    control(emulator, "POST", "reset")
    control(emulator, "POST", "seed", seed_payload(lab, group_paths_of(control(emulator, "GET", "state"))))
    sources = inventory_sources(tmp_path / "inventory", lab, connection(emulator))
    env = {"ESET_PROTECT_USERNAME": "api-user", "ESET_PROTECT_PASSWORD": DEFAULT_USERS["api-user"]}
    return {"args": [arg for source in sources for arg in ("-i", str(source))], "env": env}


def _ansible(lab: Any, tool: str, args: list, env: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], env=ansible_env(lab, env), capture_output=True, text=True,
                          timeout=600, check=False, cwd=REPO)


def _trusted(value: Any) -> Any:
    """ansible-inventory writes what the API said as {"__ansible_unsafe": value} (never templated): the values."""
    if isinstance(value, dict):
        return value["__ansible_unsafe"] if set(value) == {"__ansible_unsafe"} else {
            k: _trusted(v) for k, v in value.items()}
    return [_trusted(v) for v in value] if isinstance(value, list) else value


def test_the_eset_inventory_lists_the_lab_by_its_groups(lab: Any, eset_sources: Dict[str, Any]) -> None:
    done = _ansible(lab, "ansible-inventory", [*eset_sources["args"], "--list"], eset_sources["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    inventory = _trusted(json.loads(done.stdout))
    for group, hosts in lab_members(lab).items():
        assert sorted(inventory[group]["hosts"]) == sorted(hosts), (group, inventory.get(group))
    hostvars = inventory["_meta"]["hostvars"]
    assert hostvars[lab.agents[0]]["ansible_host"] == lab.hosts[lab.agents[0]].v4[0]
    assert hostvars[lab.agents[0]]["epns_probe_supported"] is True
    assert {name for name, *_rest in STAND_INS} <= set(hostvars)
    assert all(hostvars[name]["epns_probe_supported"] is False for name, *_rest in STAND_INS)
    assert DEFAULT_USERS["api-user"] not in done.stdout + done.stderr


def test_verify_runs_against_the_eset_inventory(lab: Any, eset_sources: Dict[str, Any], tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    targets = ":".join(["agents", *(name for name, *_rest in STAND_INS)])
    done = _ansible(lab, "ansible-playbook", [*eset_sources["args"], str(REPO / "playbooks" / "verify.yml"),
                                             "-e", f"epns_targets={targets}", "-e",
                                             f"epns_verify_report_dir={report_dir}"], eset_sources["env"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads((report_dir / "epns-report.json").read_text())["report"]
    agents, stand_ins = len(lab.agents), len(STAND_INS)
    assert report["summary"] == {"reachable": agents, "degraded": 0, "unreachable": 0, "not_probed": stand_ins,
                                 "total": agents + stand_ins}
    assert "Microsoft Windows 11 Pro" in done.stdout and "macOS Sonoma" in done.stdout


def test_the_report_of_the_lab_fleet_reads_causes_first_in_a_browser(lab: Any, eset_sources: Dict[str, Any],
                                                                       tmp_path: Path) -> None:
    """The demo's fleet as ESET lists it, with 8883 dropped on one agent: the report's causes, networks, ESET's view
    and inferred lines for the Windows and macOS stand-ins, read in headless chromium."""
    from _browser import chromium, open_report, screenshot, visible_hosts

    broken = lab.agents[0]
    lab.fault(broken, "block", port=8883)
    report_dir = tmp_path / "report"
    targets = ":".join(["agents", *(name for name, *_rest in STAND_INS)])
    done = _ansible(lab, "ansible-playbook", [*eset_sources["args"], str(REPO / "playbooks" / "verify.yml"),
                                             "-e", f"epns_targets={targets}",
                                             "-e", f"epns_verify_report_dir={report_dir}",
                                             "-e", "epns_verify_fail_on=never"], eset_sources["env"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads((report_dir / "epns-report.json").read_text())["report"]
    first = report["causes"][0]
    assert first["host_names"] == [broken] and first["column"].startswith("8883") and first["would_reach"] == 1
    assert [g["public_ip"] for g in report["egress"]] == ["203.0.113.10"]  # one site: one line, not one per host
    reasons = {line["host"]: line["reason"] for line in report["coverage"]["not_probed"]}
    stand_ins = {"win-lab-01": "windows", "win-lab-02": "windows", "mac-lab-01": "macos"}
    assert {host: reasons.get(host) for host in stand_ins} == stand_ins
    assert reasons.get("pn-server") == "not_in_play"  # ESET knows it; the play did not include it
    inferred = {line["host"]: line for line in report["inferred"]}
    assert all(inferred[host]["from_host"] in lab.agents for host in stand_ins)
    assert all(inferred[host]["text"].startswith("the path of site ") for host in stand_ins)
    with chromium() as driver:
        open_report(driver, report_dir / "epns-report.html")
        headings = [h.text for h in driver.find_elements("css selector", "h2")]
        assert headings[0].startswith("Summary") and headings[1] == "Causes", headings  # then the causes
        assert broken in driver.find_element("id", "causes").text
        from selenium.webdriver.support.ui import Select
        Select(driver.find_element("name", "verdict")).select_by_value("degraded")
        assert visible_hosts(driver) == [broken]
        page = driver.find_element("tag name", "body").text
        assert all(host in page for host in stand_ins) and "inferred" in page
        screenshot(driver, "lab-fleet-eset")
