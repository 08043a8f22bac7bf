"""wol_multicast, wol_probe and wol_nic as Ansible runs them: bad options fail with a message naming the value and
what is accepted, never a traceback, and before any command runs or any packet is sent."""
from __future__ import annotations

import json
import socket
import subprocess
import typing as t

import pytest
from ansible.module_utils import basic
from ansible_collections.protectnet.epns.plugins.modules import wol_multicast, wol_nic, wol_probe


def run_module(module: object, args: t.Dict[str, t.Any], capsys: pytest.CaptureFixture,
               monkeypatch: pytest.MonkeyPatch) -> t.Dict[str, t.Any]:
    def refuse(*a: t.Any, **k: t.Any) -> t.NoReturn:
        pytest.fail(f"nothing may run for bad input: {a} {k}")

    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(socket.socket, "sendto", refuse)
    with pytest.raises(SystemExit):
        module.main()  # type: ignore[attr-defined]
    result: t.Dict[str, t.Any] = json.loads(capsys.readouterr().out)
    assert result.get("failed") is True, result
    assert "Traceback" not in json.dumps(result)
    return result


@pytest.mark.parametrize(("args", "words"), [
    ({"destinations": ["10.0.0.5"]}, "10.0.0.5 is a unicast address"),
    ({"destinations": ["239.255.0.9"], "multicast_ttl": 300}, "multicast_ttl 300: expected 0 (leave the TTL alone) "
                                                              "to 255"),
    ({"destinations": ["239.255.0.9"], "interface": "eth0/1"}, "interface 'eth0/1' is not an interface name"),
    ({"destinations": ["239.255.0.9"], "settings_map": {"colour": "blue"}}, "colour"),
    ({"destinations": ["239.255.0.9"], "firewall_backend": "pf"}, "firewall_backend"),
    ({"destinations": ["239.255.0.9"], "wol_port": 10}, "wol_port"),
    ({"destinations": ["239.255.0.9"], "allow": ["everything"]}, "allow"),
])
def test_wol_multicast_bad_options(args: t.Dict[str, t.Any], words: str, capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_module(wol_multicast, {"server_settings": False, **args}, capsys, monkeypatch)
    assert words in result["msg"], result["msg"]


@pytest.mark.parametrize(("args", "words"), [
    ({"mode": "send"}, "destinations is empty: mode send needs the addresses to send to"),
    ({"mode": "send", "destinations": ["239.255.0.9"], "count": 0, "ttl": 256},
     "count 0: expected 1 to 20 packets per destination; ttl 256: expected 0 to 255"),
    ({"mode": "send", "destinations": ["239.255.0.9"], "interval": 9.5}, "interval 9.5: expected 0 to 5 seconds"),
    ({"mode": "send", "destinations": ["239.255.0.9/24"]},
     "'239.255.0.9/24': 239.255.0.9 is a multicast group, which takes no prefix; give it alone (239.255.0.9)"),
    ({"mode": "listen", "listen_seconds": 0}, "listen_seconds 0.0: expected more than 0 and at most 600 seconds"),
    ({"mode": "listen", "mac": "00:11:22"}, "mac '00:11:22' is not a MAC address"),
    ({"mode": "send", "destinations": ["239.255.0.9"], "secureon": "x1"}, "secureon: expected 6 bytes like a MAC"),
])
def test_wol_probe_bad_options(args: t.Dict[str, t.Any], words: str, capsys: pytest.CaptureFixture,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_module(wol_probe, args, capsys, monkeypatch)
    assert words in result["msg"], result["msg"]
    assert "x1" not in json.dumps(result)  # a SecureOn password is never echoed


def test_wol_nic_unknown_interface_is_named(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_module(wol_nic, {"interface": "pn-no-such-nic0"}, capsys, monkeypatch)
    assert "interface 'pn-no-such-nic0' does not exist on this host (its interfaces: " in result["msg"]
    assert result["interface"] == "pn-no-such-nic0"
