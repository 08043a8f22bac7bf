"""The server host's network for Wake-on-LAN: route commands, and UDP egress through the shared nftables backend
under its own tag, without touching epns_firewall's objects; iptables beside the TTL-only nftables table; a failure
part-way puts back what the run changed."""
from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest
from _fake_runner import OK, FakeRunner
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _engine, _names, _nftables
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import BackendOptions
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    ApplyError,
    FirewallError,
    Group,
    Policy,
)
from ansible_collections.protectnet.epns.plugins.module_utils._wol import _hostnet, _routes
from test_firewall_iptables_owners import BOTH, IPSETS, TOOLS
from test_firewall_ufw_backend import STATUS_ACTIVE

DESTS = [{"address": "239.255.0.9", "kind": "ipv4_multicast", "family": "ipv4", "scope": "site"},
         {"address": "ff05::9", "kind": "ipv6_multicast", "family": "ipv6", "scope": "site"},
         {"address": "224.0.0.9", "kind": "ipv4_multicast", "family": "ipv4", "scope": "link"},
         {"address": "10.1.2.255", "kind": "directed_broadcast", "family": "ipv4", "scope": "routed"}]

# The host's network as `ip -j` shows it: the default route on eth0, and none of our multicast routes yet.
HOST_NET = {("ip", "-j", "-4", "route", "show", "default"): (0, json.dumps([{"dev": "eth0"}]), ""),
            ("ip", "-j", "link", "show"): (0, json.dumps([{"ifname": "lo"}, {"ifname": "eth0"}]), ""),
            ("ip", "-j", "-4", "route", "show", "proto", "186"): (0, "[]", ""),
            ("ip", "-j", "-6", "route", "show", "proto", "186"): (0, "[]", "")}
ROUTES_ADDED = {("ip", "-4", "route", "replace", "239.255.0.9/32", "dev", "eth0", "proto", "186"): OK,
                ("ip", "-6", "route", "replace", "ff05::9/128", "dev", "eth0", "proto", "186"): OK}


@pytest.fixture
def host_keeps_what_was_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake runner answers every read the same; the engine's read-back after applying sees what was applied."""
    monkeypatch.setattr(_engine, "_read_back", lambda owner: owner.desired)


def test_check_mode_reads_only_and_predicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_routes, "HOOK_DIRS", {"/nonexistent/protectnet-test/if-up.d": "hook"})
    runner = FakeRunner({**HOST_NET, ("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), "")})
    out = _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=16, routes=True, firewall=True,
                         backend_name="nftables", persist=False, check_mode=True)
    assert out["changed"] and out["interface"] == "eth0"
    assert all(call[0][:2] in (("ip", "-j"), ("nft", "-j")) for call in runner.calls), runner.calls
    assert "+route" not in out["diff"]["before"] and "route 239.255.0.9/32 dev eth0 proto 186" in out["diff"]["after"]


def test_nftables_udp_group_under_its_own_tag() -> None:
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), "")})
    backend = _nftables.NftablesBackend(runner, BackendOptions(persist=False, options={"tag": "protectnet_wol"}))
    current = backend.read_current()
    policy = _hostnet.wol_policy(DESTS, 9, 16)
    desired = backend.compute_desired(policy, current)
    script = backend.plan(current, desired).commands[0].stdin or ""
    assert script.startswith("table inet protectnet_wol {\n")
    assert ('ip daddr @wol_v4 udp dport 9 ip ttl set 16 accept comment "protectnet_wol wol ipv4 udp 9 ttl 16"'
            in script)
    assert 'ip6 daddr @wol_v6 udp dport 9 ip6 hoplimit set 16 accept' in script
    assert "protectnet_epns" not in script
    assert backend.names.persist_file == "/etc/protectnet_epns/protectnet_wol.nft"


def test_epns_backend_ignores_wol_objects_and_the_other_way_round() -> None:
    wol_table = [{"table": {"family": "inet", "name": "protectnet_wol", "handle": 9}},
                 {"chain": {"family": "inet", "table": "protectnet_wol", "name": "output", "handle": 1,
                            "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
                 {"rule": {"family": "inet", "table": "hostfw", "chain": "output", "handle": 7,
                           "comment": "protectnet_wol wol ipv4 udp 9 ttl 16", "expr": []}}]
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": wol_table}), "")})
    epns = _nftables.NftablesBackend(runner)
    assert epns.read_current().empty
    wol = _nftables.NftablesBackend(runner, BackendOptions(options={"tag": "protectnet_wol"}))
    found = wol.read_current()
    assert "table inet protectnet_wol" in found.containers
    assert any("hostfw output: protectnet_wol wol ipv4 udp 9 ttl 16" in k for k in found.rules)


def test_tcp_groups_render_as_before() -> None:
    rule = _nftables.rule_text(_nftables.DEFAULT_NAMES.rule_comment("epns", "ipv4", (443, 8883)), True)
    assert rule == ('ip daddr @epns_v4 tcp dport { 443, 8883 } accept comment "protectnet_epns epns ipv4 tcp 443,8883"')
    assert Policy((Group("epns", (443,)),)).groups[0].proto == "tcp"


def test_another_owners_hook_above_ours_does_not_move_ours() -> None:
    """epns_firewall and wol_multicast both hook the host's default-deny chain; whichever came second sits below the
    other's hook, which only accepts its own traffic: that must still count as first, or both reinsert forever."""
    ruleset = {"nftables": [
        {"table": {"family": "inet", "name": "hostfw", "handle": 1}},
        {"chain": {"family": "inet", "table": "hostfw", "name": "output", "handle": 1, "type": "filter",
                   "hook": "output", "prio": 0, "policy": "drop"}},
        {"rule": {"family": "inet", "table": "hostfw", "chain": "output", "handle": 5,
                  "comment": "protectnet_wol wol ipv4 udp 9", "expr": []}},
        {"rule": {"family": "inet", "table": "hostfw", "chain": "output", "handle": 6,
                  "comment": "protectnet_epns epns ipv4 tcp 443,8883", "expr": []}},
        {"rule": {"family": "inet", "table": "hostfw", "chain": "output", "handle": 7, "expr": []}},
    ]}
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, json.dumps(ruleset), "")})
    rules = _nftables.NftablesBackend(runner, BackendOptions(persist=False)).read_current().rules
    assert len(rules) == 1
    assert all(text.endswith(_names.FIRST) for text in rules.values()), rules


# -- iptables beside the TTL table, failures, absent ---------------------------------------------------------------
HOOKS_OFF = {"/nonexistent/protectnet-test/if-up.d": "hook"}


def _iptables_runner(tools: t.Sequence[str] = (*TOOLS, "nft")) -> FakeRunner:
    return FakeRunner({**HOST_NET, ("iptables-legacy-save",): (0, BOTH, ""), ("ipset", "save"): (0, IPSETS, ""),
                       ("ipset", "list", "-n"): OK,
                       ("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), "")},
                      tools=tools)


def _nft_scripts(runner: FakeRunner) -> t.List[str]:
    return [data or "" for key, data in runner.calls if key[:2] == ("nft", "-f")]


@pytest.mark.usefixtures("host_keeps_what_was_applied")
def test_iptables_gets_the_udp_rules_and_a_ttl_table_for_the_groups_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_routes, "HOOK_DIRS", HOOKS_OFF)
    runner = _iptables_runner()
    runner.answers.update({("nft", "-f", "-"): OK, ("ipset", "-exist", "restore"): OK})
    out = _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=16, routes=False, firewall=True,
                         backend_name="iptables", persist=False, check_mode=False)
    fw = out["firewall"]
    assert fw["backend"] == "iptables" and fw["multicast_ttl"]["by"] == "nftables table inet protectnet_wolttl"
    scripts = _nft_scripts(runner)
    assert len(scripts) == 1 and "table inet protectnet_wolttl" in scripts[0]
    assert "239.255.0.9" in scripts[0] and "ff05::9" in scripts[0] and "10.1.2.255" not in scripts[0]
    assert "ip ttl set 16 comment" in scripts[0] and "accept comment" not in scripts[0]
    assert "table inet protectnet_wolttl" in out["diff"]["after"]


def test_a_ttl_needs_nft_beside_iptables_and_fails_before_any_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_routes, "HOOK_DIRS", HOOKS_OFF)
    runner = _iptables_runner(tools=TOOLS)
    with pytest.raises(FirewallError, match=r"multicast_ttl 16: .*nft command is not installed .*multicast_ttl: 0"):
        _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=16, routes=True, firewall=True,
                       backend_name="iptables", persist=False, check_mode=False)
    writes = [key for key, _d in runner.calls if key[0].endswith("-restore") or key[:2] in (("nft", "-f"),)
              or (key[0] == "ipset" and key[1] not in ("save", "list")) or key[2:4] in (("route", "replace"),)]
    assert runner.calls and not writes, runner.calls
    # ttl 0: nothing to rewrite, nft not needed
    out = _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=None, routes=False, firewall=True,
                         backend_name="iptables", persist=False, check_mode=True)
    assert out["firewall"]["multicast_ttl"] == {"ttl": None, "by": "nothing"}


@pytest.mark.usefixtures("host_keeps_what_was_applied")
def test_a_failing_firewall_puts_the_routes_and_the_ttl_table_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_routes, "HOOK_DIRS", HOOKS_OFF)
    runner = _iptables_runner()
    runner.answers.update({**ROUTES_ADDED, ("nft", "-f", "-"): OK})
    runner.answers[("ipset", "-exist", "restore")] = (1, "", "ipset v7.17: Error in line 3\n")
    with pytest.raises(FirewallError, match="Error in line 3"):
        _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=16, routes=True, firewall=True,
                       backend_name="iptables", persist=False, check_mode=False)
    keys = [key for key, _d in runner.calls]
    added = keys.index(("ip", "-4", "route", "replace", "239.255.0.9/32", "dev", "eth0", "proto", "186"))
    assert added < len(keys) - 1
    scripts = _nft_scripts(runner)
    assert len(scripts) == 2 and "delete table inet protectnet_wolttl" in scripts[1]  # the TTL table, undone
    # the routes are put back from what is there now (the fake shows none, so nothing is left to delete)
    assert keys[-2:] == [("ip", "-j", "-4", "route", "show", "proto", "186"),
                         ("ip", "-j", "-6", "route", "show", "proto", "186")]


def test_ufw_without_persistence_fails_before_any_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """ufw saves every rule it adds, so persist: false cannot be honoured: refused before routes or the TTL table."""
    monkeypatch.setattr(_routes, "HOOK_DIRS", HOOKS_OFF)
    runner = FakeRunner({**HOST_NET, ("ufw", "status", "verbose"): (0, STATUS_ACTIVE, ""),
                         ("ufw", "show", "added"): (0, "", ""),
                         ("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), "")},
                        tools=("ufw", "nft"))
    with pytest.raises(FirewallError, match="ufw has no runtime-only rules"):
        _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=16, routes=True, firewall=True,
                       backend_name="ufw", persist=False, check_mode=False)
    writes = [key for key, _d in runner.calls if key[:2] in (("nft", "-f"), ("ufw", "allow"), ("ufw", "--force"))
              or key[2:4] in (("route", "replace"),) or (key[0] == "ufw" and "allow" in key)]
    assert runner.calls and not writes, runner.calls


@pytest.mark.usefixtures("host_keeps_what_was_applied")
def test_the_ttl_moving_into_the_nftables_filter_swaps_the_include_blocks_in_one_run(
        tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """From iptables (the TTL table beside it) to nftables (the filter table rewrites the TTL): both owners edit the
    nftables service configuration in one run; the filter's edit starts from the TTL owner's, so the TTL table's
    include block goes and the filter's comes at once, and the next run writes nothing."""
    main = tmp_path / "nftables.conf"
    monkeypatch.setattr(_nftables, "MAIN_CONFS", (str(main),))
    monkeypatch.setattr(_nftables, "PERSIST_FILE", str(tmp_path / "own" / "nftables.nft"))
    monkeypatch.setattr(_nftables, "service_enabled", lambda: True)
    monkeypatch.setattr(_routes, "HOOK_DIRS", HOOKS_OFF)
    ttl_names, wol_names = _nftables.Names(_hostnet.TTL_TAG, ttl_only=True), _nftables.Names(_hostnet.FIREWALL_TAG)
    host_own = "#!/usr/sbin/nft -f\nflush ruleset\ntable inet hostfw {\n}\n"
    main.write_text(_nftables._with_include(host_own, True, ttl_names))
    (tmp_path / "own").mkdir()
    Path(ttl_names.persist_file).write_text("table inet protectnet_wolttl\ndelete table inet protectnet_wolttl\n")
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), ""),
                         ("nft", "-f", "-"): OK})
    run = {"state": "present", "interface": None, "ttl": 16, "routes": False, "firewall": True,
           "backend_name": "nftables", "persist": True}
    out = _hostnet.apply(runner, DESTS, 9, check_mode=False, **run)  # type: ignore[arg-type]
    assert out["firewall"]["multicast_ttl"]["files"] == [
        {"path": ttl_names.persist_file, "action": "removed"}, {"path": str(main), "action": "updated"}]
    assert main.read_text() == _nftables._with_include(host_own, True, wol_names)
    assert not Path(ttl_names.persist_file).exists() and Path(wol_names.persist_file).exists()
    again = _hostnet.apply(runner, DESTS, 9, check_mode=True, **run)  # type: ignore[arg-type]
    assert again["firewall"]["files"] == [] and again["firewall"]["multicast_ttl"]["files"] == []


def test_a_firewall_that_does_not_hold_what_was_applied_fails_and_writes_no_file(
        tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's read-back after applying: here the host (the fake) still shows nothing after the transaction."""
    monkeypatch.setattr(_nftables, "MAIN_CONFS", (str(tmp_path / "nftables.conf"),))
    monkeypatch.setattr(_nftables, "PERSIST_FILE", str(tmp_path / "own" / "nftables.nft"))
    monkeypatch.setattr(_nftables, "service_enabled", lambda: True)
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), ""),
                         ("nft", "-f", "-"): OK})
    with pytest.raises(ApplyError, match="did not match the plan after applying it"):
        _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=16, routes=False, firewall=True,
                       backend_name="nftables", persist=True, check_mode=False)
    assert len(_nft_scripts(runner)) == 1 and list(tmp_path.iterdir()) == []


def test_a_firewall_change_waiting_for_its_confirmation_stops_the_run_before_any_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_engine._rollback, "pending", lambda: ["20260101T000000-abcd"])
    monkeypatch.setattr(_routes, "HOOK_DIRS", HOOKS_OFF)
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, json.dumps({"nftables": []}), "")})
    with pytest.raises(FirewallError, match=r"\(20260101T000000-abcd\) is still waiting for its confirmation"):
        _hostnet.apply(runner, DESTS, 9, state="present", interface=None, ttl=16, routes=False, firewall=True,
                       backend_name="nftables", persist=False, check_mode=False)
    assert _nft_scripts(runner) == []
