"""The epns_firewall module as Ansible runs it: bad options fail with a message naming the value, never a
traceback, before any command runs."""
from __future__ import annotations

import json

import pytest
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.modules import epns_firewall, epns_firewall_confirm


@pytest.fixture
def refused(run_module: ModuleRun) -> ModuleRun:
    run_module.refuse_commands()
    return run_module


@pytest.mark.parametrize(("args", "words"), [
    ({"rollback_seconds": 1}, "rollback_seconds: 1 is out of range (expected 3 to 3600 seconds, or 0"),
    ({"refresh": True, "refresh_interval": 61}, "refresh_interval: 61 minutes cannot be scheduled"),
    ({"ports": ["https"]}, "ports"),
    ({"backend": "pf"}, "backend"),
    ({"state": "gone"}, "state"),
    ({"host": " "}, "host must not be empty"),
    ({"via_proxy": "proxy.lab:0"}, "via_proxy: '0' is not a TCP port"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_options_fail_cleanly(args: dict, words: str, refused: ModuleRun) -> None:
    result = refused(epns_firewall, args)
    assert result["failed"] is True
    assert words in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result)


def test_confirm_unknown_token(refused: ModuleRun) -> None:
    result = refused(epns_firewall_confirm, {"token": "20260101T000000-deadbeef"})
    assert result["failed"] is True and "no pending change" in result["msg"]
