"""The epns_firewall module as Ansible runs it: bad options fail with a message naming the value, never a
traceback, before any command runs."""
from __future__ import annotations

import json

import pytest
from _module_run import ModuleRun
from ansible.module_utils import basic
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


def test_a_command_that_must_succeed_and_fails_is_a_clean_failure(capsys: pytest.CaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Runner.check's CommandError (raised by the host I/O layer, not the firewall package) reaches fail_json."""
    listed = []

    def run_command(self: object, argv: list, **kwargs: object) -> tuple:
        if argv[1:] == ["-j", "list", "ruleset"]:
            listed.append(argv)
            if len(listed) > 1:  # detect() lists once; read_current() must succeed too
                return 1, "", "netlink: Error: Operation not permitted"
            return 0, '{"nftables": []}', ""
        return 0, "", ""

    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": {
        "backend": "nftables", "host": "198.18.1.10", "refresh": False, "rollback_seconds": 0}}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: f"/usr/sbin/{name}")
    with pytest.raises(SystemExit):
        epns_firewall.main()
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True and result["changed"] is False, result
    assert "reading the nftables ruleset" in result["msg"] and "Operation not permitted" in result["msg"], result
