"""verify.yml probes each agent through the proxy its ESET agent policies name: the lab registered in the API
emulator, an agent policy naming the lab's squid on the agents' group, a different one on one agent's device (the
device comes last, so it wins there); epns_verify_proxies not given, so the probe takes eset_agent_proxy."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Set

import pytest
from _ansible import REPO
from _eset_lab import LAB_GROUPS, group_paths_of, inventory_sources, seed_payload
from test_verify_eset_inventory import _ansible, _trusted
from test_verify_eset_inventory import emulator as emulator  # the On-Prem emulator fixture, shared

sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator
from emulator.client import connection, control
from emulator.seed import agent_proxy_policy
from pnlab.inventory import MANAGED_SQUID_URL, PROXY_URL

pytestmark = pytest.mark.lab


def _host_port(url: str) -> Dict[str, Any]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return {"host": host, "port": int(port)}


@pytest.fixture()
def sources(lab: Any, emulator: Emulator, tmp_path: Path) -> Dict[str, Any]:
    control(emulator, "POST", "reset")
    control(emulator, "POST", "seed", seed_payload(lab, group_paths_of(control(emulator, "GET", "state"))))
    state = control(emulator, "GET", "state")
    agents_group = group_paths_of(state)[LAB_GROUPS["agents"]]
    device = next(d["uuid"] for d in state["devices"] if d["displayName"] == lab.agents[1])
    squid, other = (agent_proxy_policy(name, **_host_port(url), data_format=fmt)
                    for name, url, fmt in (("Agents: squid", MANAGED_SQUID_URL, 1), ("One agent", PROXY_URL, 2)))
    control(emulator, "POST", "seed", {"policies": [squid, other], "assignments": [
        {"policyUuid": squid["uuid"], "target": {"deviceGroupUuid": agents_group}},
        {"policyUuid": other["uuid"], "target": {"deviceUuid": device}}]})
    found = inventory_sources(tmp_path / "inventory", lab, connection(emulator))
    env = {"ESET_PROTECT_USERNAME": "api-user", "ESET_PROTECT_PASSWORD": DEFAULT_USERS["api-user"]}
    return {"args": [arg for source in found for arg in ("-i", str(source))], "env": env}


def _probed_proxies(report: Dict[str, Any], host: str) -> Set[str]:
    """The proxies of the paths the probe tried from ``host`` (cells that are not "no such path")."""
    (phase,) = report["phases"]
    row = next(r for r in phase["rows"] if r["host"] == host)
    return {c["proxy"] for c in phase["columns"]
            if c["proxy"] and row["cells"][c["index"]]["state"] != "not_tested"}


def test_each_agent_is_probed_through_the_proxy_its_policy_names(lab: Any, sources: Dict[str, Any],
                                                                 tmp_path: Path) -> None:
    listing = _ansible(lab, "ansible-inventory", [*sources["args"], "--list"], sources["env"])
    assert listing.returncode == 0, listing.stderr[-3000:]
    hostvars = _trusted(json.loads(listing.stdout))["_meta"]["hostvars"]
    by_group, by_device = hostvars[lab.agents[0]]["eset_agent_proxy"], hostvars[lab.agents[1]]["eset_agent_proxy"]
    assert (by_group["host"], [p["name"] for p in by_group["from_policies"]]) == ("squid.lab", ["Agents: squid"])
    assert (by_device["host"], [p["name"] for p in by_device["from_policies"]]) == (
        "proxy.lab", ["Agents: squid", "One agent"])

    report_dir = tmp_path / "report"
    done = _ansible(lab, "ansible-playbook", [*sources["args"], str(REPO / "playbooks" / "verify.yml"),
                                             "-e", "epns_targets=agents", "-e", "epns_verify_fail_on=never",
                                             "-e", f"epns_verify_report_dir={report_dir}"], sources["env"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads((report_dir / "epns-report.json").read_text())["report"]
    assert _probed_proxies(report, lab.agents[0]) == {MANAGED_SQUID_URL}
    assert _probed_proxies(report, lab.agents[1]) == {PROXY_URL}

    overridden = tmp_path / "overridden"
    done = _ansible(lab, "ansible-playbook", [*sources["args"], str(REPO / "playbooks" / "verify.yml"),
                                             "-e", "epns_targets=agents", "-e", "epns_verify_fail_on=never",
                                             "-e", '{"epns_verify_proxies": []}',
                                             "-e", f"epns_verify_report_dir={overridden}"], sources["env"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads((overridden / "epns-report.json").read_text())["report"]
    assert _probed_proxies(report, lab.agents[0]) == set() == _probed_proxies(report, lab.agents[1])
