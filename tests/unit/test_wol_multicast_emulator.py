"""wol_multicast's server half run in-process (as Ansible runs it) against the ESET PROTECT emulator, with
host_network off so nothing on this machine changes: the (unconfirmed) setting path refused by the server gives
action_required with the server's answer, a 403 names the missing permission, and api_urls takes the
``configuration`` service the read call belongs to (issue 12)."""
from __future__ import annotations

import typing as t

import pytest
from _emulator import PASSWORD, Emulator, control, emulator_fixture, reset, scanned
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.modules import wol_multicast

READ = "/v2/configuration:batchGetValues"
WANTED = ["239.255.0.9", "239.255.0.10"]


emulator = emulator_fixture("onprem")


@pytest.fixture
def emu(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    return reset(emulator, monkeypatch)


@pytest.fixture
def run(run_module: ModuleRun) -> ModuleRun:
    return scanned(run_module)


def args(emu: Emulator, **extra: t.Any) -> dict:
    # Only the services wol_multicast uses: the token endpoint and the configuration service.
    out = {"api_urls": {"business-account": emu.url, "configuration": emu.url}, "ca_path": emu.ca_path,
           "username": "api-user", "password": PASSWORD, "destinations": WANTED, "host_network": False}
    out.update(extra)
    return out


@pytest.mark.parametrize("status", [400, 404, 501])
def test_a_refused_setting_path_returns_action_required_instead_of_failing(emu: Emulator, run: ModuleRun,
                                                                           status: int) -> None:
    control(emu, "POST", "faults", {"method": "POST", "path": READ, "status": status, "times": 0,
                                    "body": {"code": 3, "message": "no such setting"}})
    result = run(wol_multicast, args(emu))
    assert result.get("failed") is not True, result.get("msg")
    assert result["applied"] is False and result["changed"] is False
    required = result["action_required"]
    assert required["values"] == WANTED and f"HTTP {status}" in required["reason"]
    assert "no such setting" in required["reason"]  # the server's own answer
    assert result["server"]["read_error"]["request_id"]
    assert [r["path"] for r in emu.requests if r["path"] == READ] == [READ]


def test_a_403_says_which_permission_the_api_user_lacks(emu: Emulator, run: ModuleRun) -> None:
    control(emu, "POST", "faults", {"method": "POST", "path": READ, "status": 403, "times": 0})
    failed = run(wol_multicast, args(emu))
    assert failed.get("failed") is True
    assert "api-user" in failed["msg"] and "lacks the permission" in failed["msg"]
    assert "Server Settings" in failed["msg"] and failed["error"]["status"] == 403
    assert failed["action_required"]["values"] == WANTED


def test_api_urls_takes_the_configuration_service(emu: Emulator, run: ModuleRun) -> None:
    result = run(wol_multicast, args(emu))
    assert result.get("failed") is not True, result.get("msg")
    assert result["action_required"]["values"] == WANTED
