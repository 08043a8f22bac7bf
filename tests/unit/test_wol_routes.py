"""The server host's multicast routes: which groups get one, the exact commands, the boot hook (its text, and that it
re-adds exactly the routes of its interface when run the way ifupdown, NetworkManager and networkd-dispatcher run
it), and where it is installed."""
from __future__ import annotations

import os
import subprocess
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _routes

DESTS = [{"address": "239.255.0.9", "kind": "ipv4_multicast", "family": "ipv4", "scope": "site"},
         {"address": "ff05::9", "kind": "ipv6_multicast", "family": "ipv6", "scope": "site"},
         {"address": "224.0.0.9", "kind": "ipv4_multicast", "family": "ipv4", "scope": "link"},
         {"address": "10.1.2.255", "kind": "directed_broadcast", "family": "ipv4", "scope": "routed"}]


def test_routes_for_routable_groups_only_and_exact_commands() -> None:
    want = _routes.desired_routes(DESTS, "eth0")
    assert want == {"239.255.0.9/32": "eth0", "ff05::9/128": "eth0"}
    cmds = _routes.route_commands({"239.1.1.1/32": "eth0", "ff05::9/128": "eth1"}, want)
    assert cmds == [["ip", "-4", "route", "del", "239.1.1.1/32", "proto", "186"],
                    ["ip", "-4", "route", "replace", "239.255.0.9/32", "dev", "eth0", "proto", "186"],
                    ["ip", "-6", "route", "replace", "ff05::9/128", "dev", "eth0", "proto", "186"]]
    assert _routes.route_commands(want, want) == []


def _run_hook(script: Path, fake_bin: Path, env: t.Dict[str, str], *args: str) -> t.List[str]:
    """Run the hook with a recording `ip` first on PATH; return the ip command lines it ran."""
    log = fake_bin / "ip.log"
    log.write_text("")
    done = subprocess.run([str(script), *args], env={"PATH": f"{fake_bin}:/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return [line for line in log.read_text().splitlines() if line]


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    ip = directory / "ip"
    ip.write_text(f'#!/bin/sh\necho "ip $*" >> {directory}/ip.log\n')
    ip.chmod(0o755)
    return directory


def test_the_boot_hook_re_adds_the_routes_of_its_interface_only(tmp_path: Path, fake_bin: Path) -> None:
    script = tmp_path / "hook"
    script.write_text(_routes.hook_script({"239.255.0.9/32": "eth0", "ff05::9/128": "eth0", "239.1.1.1/32": "eth1"}))
    script.chmod(0o755)
    eth0 = ["ip -4 route replace 239.255.0.9/32 dev eth0 proto 186",
            "ip -6 route replace ff05::9/128 dev eth0 proto 186"]
    assert _run_hook(script, fake_bin, {"IFACE": "eth0", "MODE": "start"}) == eth0            # ifupdown
    assert _run_hook(script, fake_bin, {}, "eth0", "up") == eth0                               # NetworkManager
    assert _run_hook(script, fake_bin, {"IFACE": "eth0", "STATE": "routable"}) == eth0        # networkd-dispatcher
    assert _run_hook(script, fake_bin, {}, "eth0", "down") == []
    assert _run_hook(script, fake_bin, {"IFACE": "lo"}) == []
    assert _run_hook(script, fake_bin, {}, "eth1", "up") == ["ip -4 route replace 239.1.1.1/32 dev eth1 proto 186"]


def test_hooks_go_into_every_hook_directory_present_and_away_with_absent(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ifup, nm = tmp_path / "if-up.d", tmp_path / "nm-dispatcher.d"
    monkeypatch.setattr(_routes, "HOOK_DIRS", {str(ifup): "hook", str(nm): "90-hook",
                                               str(tmp_path / "missing"): "90-hook"})
    ifup.mkdir()
    nm.mkdir()
    want = {"239.255.0.9/32": "eth0"}
    changes, warnings = _routes.hook_files(want, persist=True)
    assert [c.path for c in changes] == [str(ifup / "hook"), str(nm / "90-hook")] and not warnings
    assert all(c.mode == 0o755 and c.content == _routes.hook_script(want) for c in changes)
    for change in changes:
        Path(change.path).write_text(change.content or "")
    assert _routes.hook_files(want, persist=True) == ([], [])  # idempotent
    gone, _w = _routes.hook_files({}, persist=True)
    assert [c.content for c in gone] == [None, None]
    off, _w = _routes.hook_files(want, persist=False)
    assert [c.content for c in off] == [None, None]


def test_no_hook_directory_is_a_warning_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_routes, "HOOK_DIRS", {"/nonexistent/if-up.d": "hook"})
    changes, warnings = _routes.hook_files({"239.255.0.9/32": "eth0"}, persist=True)
    assert changes == [] and "runtime only" in warnings[0]
    assert _routes.hook_files({}, persist=True) == ([], [])


def test_hook_name_has_no_dot_for_run_parts() -> None:
    assert all("." not in name for name in _routes.HOOK_DIRS.values())
    assert os.path.basename(_routes.HOOK_NAME) == _routes.HOOK_NAME


def test_an_unknown_interface_is_named_with_the_ones_that_exist() -> None:
    class Links:
        def run(self, argv: t.Sequence[str], data: t.Optional[str] = None,
                cwd: t.Optional[str] = None) -> t.Tuple[int, str, str]:
            return 0, '[{"ifname": "lo"}, {"ifname": "eth0"}]', ""

    _routes.check_interface(Links(), "eth0")  # type: ignore[arg-type]
    with pytest.raises(_routes.RouteError, match=r"interface 'eht0' does not exist on this host .*lo, eth0"):
        _routes.check_interface(Links(), "eht0")  # type: ignore[arg-type]
