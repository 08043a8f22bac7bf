"""Wake-on-LAN on a NIC against recorded ethtool/nmcli output: support read from ethtool, the veth case reported as
unsupported, enabling through NetworkManager, a systemd .link file or plain ethtool (exact commands), check mode
running nothing, a second run changing nothing, and failures that name what is wrong."""
from __future__ import annotations

import os
import stat
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import Runner
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _nic

# recorded: an Intel e1000e NIC (ethtool 6.1), and a veth (no Wake-on lines at all)
E1000E = """Settings for eth0:
\tSupported ports: [ TP ]
\tSupported link modes:   10baseT/Half 10baseT/Full
\tSpeed: 1000Mb/s
\tDuplex: Full
\tPort: Twisted Pair
\tSupports Wake-on: pumbg
\tWake-on: {wake_on}
\tCurrent message level: 0x00000007 (7)
\t\t\t       drv probe link
\tLink detected: yes
"""
VETH = """Settings for eth0:
\tSupported ports: [  ]
\tSpeed: 10000Mb/s
\tDuplex: Full
\tPort: Twisted Pair
\tLink detected: yes
"""
NM_DEVICES = "eth0:connected:Wired connection 1\nlo:connected (externally):lo\n"
MAC = "52:54:00:12:34:56"


class NicRunner(Runner):
    """ethtool answers from a mutable Wake-on value, so `ethtool -s eth0 wol g` changes what is read next; eth0 has
    no global address; any other command must be in answers, or the test fails."""

    def __init__(self, ethtool: str = E1000E, wake_on: str = "d", tools: t.Sequence[str] = ("ethtool",),
                 answers: t.Optional[t.Dict[t.Tuple[str, ...], t.Tuple[int, str, str]]] = None) -> None:
        self.ethtool, self.wake_on, self.tools = ethtool, wake_on, set(tools)
        self.answers = answers if answers is not None else {}  # the test may change an answer between runs
        self.answers.setdefault(("ip", "-j", "addr", "show", "dev", "eth0"),
                                (0, '[{"ifname": "eth0", "addr_info": []}]', ""))
        self.calls: t.List[t.Tuple[str, ...]] = []

    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None,
            cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        key = tuple(a.rsplit("/", 1)[-1] if i == 0 else a for i, a in enumerate(argv))
        self.calls.append(key)
        if key in self.answers:
            return self.answers[key]
        if key == ("ethtool", "eth0"):
            return 0, self.ethtool.format(wake_on=self.wake_on), ""
        if key == ("ethtool", "-i", "eth0"):
            return 0, "driver: veth\nversion: 1.0\n", ""
        if key == ("ethtool", "-s", "eth0", "wol", "g"):
            self.wake_on = "g"
            return 0, "", ""
        pytest.fail(f"unexpected command {list(key)}: NicRunner does not name it")

    def which(self, name: str) -> t.Optional[str]:
        return f"/usr/sbin/{name}" if name in self.tools else None

    def writes(self) -> t.List[t.Tuple[str, ...]]:
        return [c for c in self.calls if c[:2] == ("ethtool", "-s") or c[1:3] == ("connection", "modify")]


@pytest.fixture(autouse=True)
def sys_and_etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sys/eth0").mkdir(parents=True)
    (tmp_path / "sys/eth0/address").write_text(MAC + "\n")
    (tmp_path / "sys/lo").mkdir()
    monkeypatch.setattr(_nic, "SYS_NET", str(tmp_path / "sys"))
    monkeypatch.setattr(_nic, "LINK_DIR", str(tmp_path / "network"))
    monkeypatch.setattr(_nic, "networkd_manages", lambda runner, interface: False)
    return tmp_path


def test_veth_is_unsupported_with_the_driver_named_not_an_error() -> None:
    runner = NicRunner(VETH)
    out = _nic.run(runner, "eth0", enable=True, method="auto", check_mode=False)
    assert out["supported"] is False and out["changed"] is False and not runner.writes()
    assert out["reason"] == ("eth0 (driver veth) does not support Wake-on-LAN by magic packet "
                             "(no 'Supports Wake-on' line)")


def test_without_ethtool_support_is_unknown() -> None:
    out = _nic.run(NicRunner(tools=()), "eth0", enable=True, method="auto", check_mode=False)
    assert out["supported"] is None and "ethtool is not installed" in out["reason"] and not out["changed"]


def test_networkmanager_enables_runtime_and_connection_check_mode_first() -> None:
    answers = {("nmcli", "-t", "-f", "DEVICE,STATE,CONNECTION", "device"): (0, NM_DEVICES, ""),
               ("nmcli", "-g", "802-3-ethernet.wake-on-lan", "connection", "show", "Wired connection 1"):
                   (0, "default\n", ""),
               ("nmcli", "connection", "modify", "Wired connection 1", "802-3-ethernet.wake-on-lan", "magic"):
                   (0, "", "")}
    runner = NicRunner(tools=("ethtool", "nmcli"), answers=answers)
    check = _nic.run(runner, "eth0", enable=True, method="auto", check_mode=True)
    assert check["method"] == "networkmanager" and check["changed"] and not runner.writes()
    assert check["commands"] == [
        {"argv": ["ethtool", "-s", "eth0", "wol", "g"], "stdin": None},
        {"argv": ["nmcli", "connection", "modify", "Wired connection 1", "802-3-ethernet.wake-on-lan", "magic"],
         "stdin": None}]
    assert check["files"] == []
    assert check["before"] == {"wake_on": "d", "persistent": False} and check["enabled"] is True
    assert check["after"] == {"wake_on": "g", "persistent": True}
    done = _nic.run(runner, "eth0", enable=True, method="auto", check_mode=False)
    assert runner.writes() == [("ethtool", "-s", "eth0", "wol", "g"),
                               ("nmcli", "connection", "modify", "Wired connection 1", "802-3-ethernet.wake-on-lan",
                                "magic")]
    assert done["wake_on"] == "g" and done["enabled"] and done["persistent"] is True
    assert done["after"] == {"wake_on": "g", "persistent": True}
    assert _nic.describe("eth0", done["before"], "networkmanager") == "eth0 wake-on: d, not persistent\n"
    assert _nic.describe("eth0", done, "networkmanager") == "eth0 wake-on: g, persistent (networkmanager)\n"
    # the connection now says magic: a second run changes nothing
    answers[("nmcli", "-g", "802-3-ethernet.wake-on-lan", "connection", "show", "Wired connection 1")] = (
        0, "magic\n", "")
    again = _nic.run(runner, "eth0", enable=True, method="auto", check_mode=False)
    assert again["changed"] is False and again["commands"] == []


def test_systemd_link_file_matches_the_mac_and_a_second_run_is_quiet(sys_and_etc: Path) -> None:
    runner = NicRunner()
    done = _nic.run(runner, "eth0", enable=True, method="systemd_link", check_mode=False)
    link = sys_and_etc / "network/50-protectnet-wol-eth0.link"
    assert done["changed"] and done["persistent"] is True
    assert done["files"] == [{"path": str(link), "action": "created"}]
    assert [c["argv"] for c in done["commands"]] == [["ethtool", "-s", "eth0", "wol", "g"]]
    assert link.read_text() == f"# Managed by protectnet.epns.wol_nic\n[Match]\nMACAddress={MAC}\n\n[Link]\n" \
                               "WakeOnLan=magic\n"
    again = _nic.run(runner, "eth0", enable=True, method="systemd_link", check_mode=False)
    assert again["changed"] is False and again["files"] == [] and again["commands"] == []


def test_plain_ethtool_warns_that_it_does_not_survive_a_reboot() -> None:
    runner = NicRunner()
    done = _nic.run(runner, "eth0", enable=True, method="auto", check_mode=False)
    assert done["method"] == "ethtool" and done["persistent"] is None and done["changed"]
    assert "lost at the next reboot" in done["warnings"][0]
    report_only = _nic.run(NicRunner(wake_on="d"), "eth0", enable=False, method="auto", check_mode=False)
    assert "warnings" not in report_only and report_only["enabled"] is False


def test_failures_name_the_problem() -> None:
    with pytest.raises(_nic.NicError, match=r"interface 'eth9' does not exist on this host \(its interfaces: eth0, lo"):
        _nic.check_interface("eth9")
    _nic.check_interface("eth0")
    with pytest.raises(_nic.NicError, match="NetworkManager has no active connection on eth0"):
        no_connection = {("nmcli", "-t", "-f", "DEVICE,STATE,CONNECTION", "device"): (0, "eth0:disconnected:\n", "")}
        _nic.run(NicRunner(tools=("ethtool", "nmcli"), answers=no_connection), "eth0", enable=True,
                 method="networkmanager", check_mode=False)
    failing = NicRunner(answers={("ethtool", "-s", "eth0", "wol", "g"): (1, "", "Operation not supported\n")})
    with pytest.raises(_nic.NicError, match="ethtool -s eth0 wol g failed: Operation not supported"):
        _nic.run(failing, "eth0", enable=True, method="ethtool", check_mode=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another owner needs root")
def test_a_rewritten_link_file_keeps_its_mode_and_owner(sys_and_etc: Path) -> None:
    link = sys_and_etc / "network/50-protectnet-wol-eth0.link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.write_text(f"[Match]\nMACAddress={MAC}\n")
    link.chmod(0o755)
    os.chown(link, 1234, 2345)
    assert _nic.run(NicRunner(), "eth0", enable=True, method="systemd_link", check_mode=False)["changed"]
    found = link.stat()
    assert "WakeOnLan=magic" in link.read_text()
    assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (1234, 2345, 0o755)
