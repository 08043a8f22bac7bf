"""Helpers for the Wake-on-LAN lab tests: the lab's destinations, wol_multicast and the epns_wol role run through
ansible-playbook against the lab, and readers of the server host's routes and of the verdict cells."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
from _ansible import PLAYBOOKS, run_playbook
from _firewall import sh

GROUP, GROUP6 = "239.255.0.9", "ff05::9"
LAN2_BCAST, LAN_BCAST = "198.18.2.255", "198.18.0.255"
# what the role sends to: the groups, and the directed broadcasts of the agents' subnets (from their NICs)
ROLE_DESTINATIONS = [GROUP, GROUP6, f"{LAN_BCAST}/24", f"{LAN2_BCAST}/24"]


def needs_lan2(lab: Any) -> None:
    if not lab.lan2_agents:
        pytest.skip("needs the lab's lan2 (Lab(wol=True); PNLAB_WOL=0 turned it off)")


def multicast(lab: Any, tmp_path: Path, args: Dict[str, Any], *cli: str) -> Dict[str, Any]:
    """wol_multicast on the server host; its registered result, plus the playbook's output in '_stdout'."""
    result = tmp_path / f"wol-{len(list(tmp_path.iterdir()))}.json"
    done = run_playbook(lab, PLAYBOOKS / "wol_multicast.yml", extra_vars={"wol_args": args,
                                                                           "result_file": str(result)}, args=cli)
    assert result.exists(), done.stdout[-3000:] + done.stderr[-2000:]
    data: Dict[str, Any] = json.loads(result.read_text())
    data["_stdout"] = done.stdout
    return data


def role(lab: Any, tmp_path: Path, **variables: Any) -> Dict[str, Any]:
    """The epns_wol role on every agent of both subnets; what it set and found, as saved on the controller."""
    result = tmp_path / f"role-{len(list(tmp_path.iterdir()))}.json"
    extra = {"result_file": str(result), "epns_wol_destinations": [GROUP, GROUP6], **variables}
    done = run_playbook(lab, PLAYBOOKS / "wol_role.yml", extra_vars=extra)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    data: Dict[str, Any] = json.loads(result.read_text())
    return data


def routes(lab: Any) -> str:
    return sh(lab, lab.server, ["ip", "route", "show", "proto", "186"]) + \
        sh(lab, lab.server, ["ip", "-6", "route", "show", "proto", "186"])


def cells(data: Dict[str, Any]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    out: Dict[str, Dict[str, Dict[str, Any]]] = data["result"]["cells"]
    return out
