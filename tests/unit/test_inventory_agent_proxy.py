"""eset_agent_proxy end to end: agent policies assigned at device, static-group, parent-group and dynamic-group
level in the emulator, with forced and not-apply settings in policy data formats 1 and 2, listed by the real
`ansible-inventory` (the helpers of test_inventory_eset_protect)."""
from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from _emulator import Emulator, control, emulator_fixture, group_uuid, reset
from emulator.minimum import inventory_requests
from emulator.seed import FORCE, NOT_APPLY, agent_proxy_policy, uid
from test_inventory_eset_protect import LIMITS, ansible_inventory, config, listed, requests, summary

UNKNOWN = "unknown (maybe set by the installer)"
POLICIES = [agent_proxy_policy("on All", "all.proxy"), agent_proxy_policy("on Linux", "linux.proxy"),
            agent_proxy_policy("on Servers 1", "servers1.proxy", 3129),
            agent_proxy_policy("on Servers 2", "servers2.proxy", 3130, data_format=2),
            agent_proxy_policy("on Proxy users", "dynamic.proxy", data_format=2),
            agent_proxy_policy("on Workstations", "not-applied.proxy", 8081, node_flags={"Host": NOT_APPLY}),
            agent_proxy_policy("forced on Windows", "forced.proxy", flags=FORCE),
            agent_proxy_policy("on win-lap-03", "device.proxy"),
            agent_proxy_policy("on lnx-web-01", "web.proxy", 8080, data_format=2)]
DYNAMIC = {"uuid": uid("group:dynamic proxy users"), "displayName": "Proxy users",
           "parentGroupUuid": group_uuid("All/Linux"), "dynamicMembers": [uid("device:lnx-db-01")]}


def _on(policy: str, group: t.Optional[str] = None, device: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    target = {"deviceGroupUuid": group_uuid(group)} if group else {"deviceUuid": uid("device:" + str(device))}
    return {"policyUuid": uid("policy:" + policy), "target": target}


# The order matters: a new assignment lands at the bottom, so Servers 1 gets rank 1 and Servers 2 rank 2.
ASSIGNMENTS = [_on("on All", "All"), _on("on Linux", "All/Linux"), _on("on Servers 1", "All/Linux/Servers"),
               _on("on Servers 2", "All/Linux/Servers"), _on("on Workstations", "All/Linux/Workstations"),
               _on("forced on Windows", "All/Windows"), _on("on win-lap-03", device="win-lap-03"),
               _on("on lnx-web-01", device="lnx-web-01"),
               {"policyUuid": uid("policy:on Proxy users"), "target": {"deviceGroupUuid": DYNAMIC["uuid"]}}]
SERVERS = ["on All", "on Linux", "on Servers 1", "on Servers 2"]
# host: (proxy host, port, policies in the order they applied)
EXPECTED = {
    "lnx-web-01": ("web.proxy", 8080, [*SERVERS, "on lnx-web-01"]),  # the device last
    "lnx-db-01": ("dynamic.proxy", 3128, [*SERVERS, "on Proxy users"]),  # dynamic after the level's static group
    "lnx-dev-07": ("linux.proxy", 8081, ["on All", "on Linux", "on Workstations"]),  # Host not applied
    "win-lap-03": ("forced.proxy", 3128, ["on All", "forced on Windows"]),  # forced beats the device's own
    "win-srv-01": ("forced.proxy", 3128, ["on All", "forced on Windows"]),
}


emulator = emulator_fixture("onprem", "cloud")


def test_each_precedence_case(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reset(emulator, monkeypatch)
    control(emulator, "POST", "seed", {"policies": POLICIES, "groups": [DYNAMIC], "assignments": ASSIGNMENTS})
    control(emulator, "DELETE", "requests")
    data, warnings = listed(config(tmp_path, emulator))
    hostvars = data["_meta"]["hostvars"]
    for host, (proxy_host, port, names) in EXPECTED.items():
        proxy = hostvars[host]["eset_agent_proxy"]
        assert (proxy["host"], proxy["port"], [p["name"] for p in proxy["from_policies"]]) == (
            proxy_host, port, names), host
        assert proxy["services"] == ["all"] and proxy["map_confirmed"] is False and proxy["reason"] is None
    assert hostvars["lnx-db-01"]["eset_agent_proxy"]["from_policies"][-1]["target"] == "group All/Linux/Proxy users"
    assert "dynamicMembers" not in json.dumps(requests(emulator))
    calls = requests(emulator)
    members = [c for c in calls if c["api_path"].endswith("/devices") and "device_groups" in c["api_path"]]
    assert [c["api_path"] for c in members] == [f"/v1/device_groups/{DYNAMIC['uuid']}/devices"]
    state = control(emulator, "GET", "state")
    limit = LIMITS[emulator.deployment]
    assert len(calls) == inventory_requests(state, limit) == summary(data)["requests"]
    assert "cannot be decoded" not in warnings


def test_no_policy_setting_a_proxy_is_unknown_and_the_probe_gets_none(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reset(emulator, monkeypatch)
    data, _warnings = listed(config(tmp_path, emulator))
    for host, variables in data["_meta"]["hostvars"].items():
        assert variables["eset_agent_proxy"]["host"] is None, host
        assert variables["eset_agent_proxy"]["reason"] == UNKNOWN


def test_a_settings_map_file_and_a_bad_map(emulator: Emulator, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reset(emulator, monkeypatch)
    control(emulator, "POST", "seed", {"policies": POLICIES[:1], "assignments": ASSIGNMENTS[:1]})
    (tmp_path / "map.yml").write_text("confirmed: true\n")
    data, _warnings = listed(config(tmp_path, emulator, settings_map_file=str(tmp_path / "map.yml")))
    proxy = data["_meta"]["hostvars"]["lnx-web-01"]["eset_agent_proxy"]
    assert proxy["host"] == "all.proxy" and proxy["map_confirmed"] is True
    # the calibration overrides file (playbooks/calibrate.yml) is taken too: its agent_policy section
    (tmp_path / "eset-calibration.yml").write_text("agent_policy: {confirmed: true}\nwake_on_lan: {}\n")
    data, _warnings = listed(config(tmp_path, emulator, settings_map_file=str(tmp_path / "eset-calibration.yml")))
    assert data["_meta"]["hostvars"]["lnx-web-01"]["eset_agent_proxy"]["map_confirmed"] is True
    data, _warnings = listed(config(tmp_path, emulator, settings_map={"flags": {"apply": 2, "force": 1}}))
    assert data["_meta"]["hostvars"]["lnx-web-01"]["eset_agent_proxy"]["reason"] == UNKNOWN  # 4 is no longer apply
    done = ansible_inventory(config(tmp_path, emulator, settings_map={"flags": {"force": 3}}), "--list")
    assert done.returncode != 0 and "flags.force must be one ce_flags bit" in done.stderr
