"""Every module that changes something returns the one result shape (docs/results.md): changed, before, after,
commands as {argv, stdin}, files as {path, action} with created/updated/removed, and warnings (module.warn) when
there are any. Real runs of each module's main(), in check mode and for real, against the fakes the other tests use."""
from __future__ import annotations

import json
import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest
from _fake_eset import FakeEset
from _fake_runner import FakeRunner
from ansible.module_utils import basic
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _rollback
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _nic, _routes
from ansible_collections.protectnet.epns.plugins.modules import (
    agent_proxy_policy,
    epns_firewall,
    epns_firewall_confirm,
    proxy_connect_ports,
    wol_multicast,
    wol_nic,
)
from test_agent_proxy_logic import args as policy_args
from test_proxy_config import SQUID_CONF
from test_proxy_config import FakeRunner as SquidRunner
from test_wol_nic import MAC, NicRunner

Host = t.Any  # a fake runner: run(argv, data) and which(name)


def on_the_host(monkeypatch: pytest.MonkeyPatch, host: Host) -> None:
    """Every way a module reaches the host's commands (AnsibleModule.run_command, subprocess) answers from host."""
    def run_command(_module: t.Any, args: t.Sequence[str], data: t.Optional[str] = None, **_k: t.Any) -> t.Any:
        return host.run(list(args), data) if data is not None else host.run(list(args))

    def subprocess_run(argv: t.Sequence[str], input: t.Optional[str] = None, **_k: t.Any) -> t.Any:
        rc, out, err = host.run(list(argv), input) if input is not None else host.run(list(argv))
        return subprocess.CompletedProcess(list(argv), rc, out, err)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda _m, name, *a, **k: host.which(name))
    monkeypatch.setattr(subprocess, "run", subprocess_run)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: host.which(name))


def firewall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool) -> t.Tuple[t.Any, t.Dict[str, t.Any]]:
    on_the_host(monkeypatch, FakeRunner({("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), "")}))
    wanted = {"backend": "nftables", "host": "198.18.1.10", "persist": False}
    return epns_firewall, wanted if check else dict(wanted, state="absent")


def confirm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool) -> t.Tuple[t.Any, t.Dict[str, t.Any]]:
    pending = {"path": str(tmp_path / "persisted.nft"), "content": "table inet protectnet_epns\n", "mode": 0o600}
    info = _rollback.arm([], [pending], 30, base=str(tmp_path / "rb"))
    monkeypatch.setattr(_rollback.confirm, "__defaults__", (str(tmp_path / "rb"),))
    return epns_firewall_confirm, {"token": info["token"]}


def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool) -> t.Tuple[t.Any, t.Dict[str, t.Any]]:
    (tmp_path / "squid.conf").write_text(SQUID_CONF)
    on_the_host(monkeypatch, SquidRunner())
    return proxy_connect_ports, {"proxy": "squid", "config_path": str(tmp_path / "squid.conf"),
                                 "allowed_sources": ["10.0.0.0/8"]}


def multicast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool) -> t.Tuple[t.Any, t.Dict[str, t.Any]]:
    monkeypatch.setattr(_routes, "HOOK_DIRS", {str(tmp_path / "if-up.d"): "hook"})
    on_the_host(monkeypatch, FakeRunner({
        ("ip", "-j", "-4", "route", "show", "default"): (0, json.dumps([{"dev": "eth0"}]), ""),
        ("ip", "-j", "link", "show"): (0, json.dumps([{"ifname": "lo"}, {"ifname": "eth0"}]), ""),
        ("ip", "-j", "-4", "route", "show", "proto", "186"): (0, "[]", ""),
        ("ip", "-j", "-6", "route", "show", "proto", "186"): (0, "[]", ""),
        ("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), "")}, tools=("nft", "ip")))
    wanted = {"destinations": ["239.255.0.9"], "server_settings": False, "firewall_backend": "nftables",
              "persist": False}
    return wol_multicast, wanted if check else dict(wanted, state="absent")


def nic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool) -> t.Tuple[t.Any, t.Dict[str, t.Any]]:
    (tmp_path / "sys/eth0").mkdir(parents=True)
    (tmp_path / "sys/eth0/address").write_text(MAC + "\n")
    monkeypatch.setattr(_nic, "SYS_NET", str(tmp_path / "sys"))
    monkeypatch.setattr(_nic, "LINK_DIR", str(tmp_path / "network"))
    on_the_host(monkeypatch, NicRunner())
    return wol_nic, {"interface": "eth0", "enable": True, "method": "systemd_link"}


def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: bool) -> t.Tuple[t.Any, t.Dict[str, t.Any]]:
    fake = FakeEset(deployment="on_prem", page_size=3).__enter__()
    monkeypatch.setattr(FakeEset, "_shape_test_running", fake, raising=False)
    fake.add_group("Servers", fake.root)
    return agent_proxy_policy, policy_args(fake, targets=["All/Servers"])


SCENARIOS = {"epns_firewall": firewall, "epns_firewall_confirm": confirm, "proxy_connect_ports": proxy,
             "wol_multicast": multicast, "wol_nic": nic, "agent_proxy_policy": policy}
RUNS = [(name, check) for name in SCENARIOS for check in (True, False) if (name, check) != ("epns_firewall_confirm",
                                                                                         True)]


def assert_the_one_shape(result: t.Mapping[str, t.Any]) -> None:
    assert not result.get("failed"), result
    assert isinstance(result["changed"], bool)
    assert "before" in result and "after" in result
    if result["before"] is not None:
        assert type(result["after"]) is type(result["before"]), (result["before"], result["after"])
    assert isinstance(result["commands"], list)
    for command in result["commands"]:
        assert set(command) == {"argv", "stdin"}, command
        assert isinstance(command["argv"], list) and all(isinstance(arg, str) for arg in command["argv"]), command
        assert command["stdin"] is None or isinstance(command["stdin"], str), command
    assert isinstance(result["files"], list)
    for entry in result["files"]:
        assert set(entry) == {"path", "action"} and entry["action"] in ("created", "updated", "removed"), entry
    # module.warn: a list (ansible-core 2.19 hands the controller each one as a WarningSummary, not a str)
    assert isinstance(result.get("warnings", []), list)


@pytest.mark.parametrize(("name", "check"), RUNS, ids=[f"{n}-{'check' if c else 'apply'}" for n, c in RUNS])
def test_every_changing_module_returns_the_one_result_shape(name: str, check: bool, tmp_path: Path,
                                                            run_module: t.Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    module, args = SCENARIOS[name](tmp_path, monkeypatch, check)
    try:
        result = run_module(module, args, check=check)
    finally:
        running = getattr(FakeEset, "_shape_test_running", None)
        if running is not None:
            running.__exit__(None, None, None)
    assert_the_one_shape(result)


def test_the_runs_show_commands_and_files_where_the_module_has_them(tmp_path: Path, run_module: t.Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only empty lists: a proxy run validates and writes, a wol_nic run creates its .link file."""
    module, args = proxy(tmp_path, monkeypatch, False)
    done = run_module(module, args)
    assert [f["action"] for f in done["files"]] == ["created", "updated"]
    assert done["commands"][0]["argv"][1:3] == ["-k", "parse"] and done["commands"][0]["stdin"] is None
    assert done["before"] == {"snippet": None, "included": False} and done["after"]["included"] is True
    module, args = nic(tmp_path / "nic", monkeypatch, False)
    done = run_module(module, args)
    assert done["files"] == [{"path": str(tmp_path / "nic/network/50-protectnet-wol-eth0.link"), "action": "created"}]
