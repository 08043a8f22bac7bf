"""wol_multicast, wol_probe and wol_nic as Ansible runs them: bad options fail with a message naming the value and
what is accepted, never a traceback, and before any command runs or any packet is sent."""
from __future__ import annotations

import json
import typing as t

import pytest
from _module_run import ModuleRun
from ansible_collections.protectnet.epns.plugins.modules import wol_multicast, wol_nic, wol_probe


@pytest.fixture
def refused(run_module: ModuleRun) -> t.Callable[[t.Any, t.Dict[str, t.Any]], t.Dict[str, t.Any]]:
    """The module on bad input: nothing runs or is sent, and it fails cleanly."""
    run_module.refuse_commands()

    def run(module: t.Any, args: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        result = run_module(module, args)
        assert result.get("failed") is True, result
        assert "Traceback" not in json.dumps(result)
        return result
    return run


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
def test_wol_multicast_bad_options(args: t.Dict[str, t.Any], words: str, refused: t.Any) -> None:
    result = refused(wol_multicast, {"server_settings": False, **args})
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
def test_wol_probe_bad_options(args: t.Dict[str, t.Any], words: str, refused: t.Any) -> None:
    result = refused(wol_probe, args)
    assert words in result["msg"], result["msg"]
    assert "x1" not in json.dumps(result)  # a SecureOn password is never echoed


def test_wol_nic_unknown_interface_is_named(refused: t.Any) -> None:
    result = refused(wol_nic, {"interface": "pn-no-such-nic0"})
    assert "interface 'pn-no-such-nic0' does not exist on this host (its interfaces: " in result["msg"]
    assert result["interface"] == "pn-no-such-nic0"
