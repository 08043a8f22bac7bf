"""nftables and iptables backends against a fake runner: exact argv and scripts, and check mode reads only."""
from __future__ import annotations

import json
import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _engine, _iptables, _nftables
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import Settings
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    ApplyError,
    FirewallError,
    Group,
    Policy,
    PolicySpec,
    State,
)
from ansible_collections.protectnet.epns.plugins.module_utils._host._run import Runner

POLICY = Policy((Group("epns", (443, 8883), ("198.18.1.10/32",), ("2001:db8:0:1::10/128",)),))
MOVED = Policy((Group("epns", (443, 8883), ("198.18.1.11/32",), ("2001:db8:0:1::10/128",)),))
READ_ONLY = {("nft", "-j", "list", "ruleset"), ("iptables-legacy-save",), ("ip6tables-legacy-save",),
             ("iptables-nft-save",), ("ip6tables-nft-save",), ("ipset", "save"), ("ipset", "list", "-n"),
             ("iptables", "-V")}


class FakeRunner(Runner):
    """Answers from a table keyed by argv; records every call."""

    def __init__(self, answers: t.Dict[t.Tuple[str, ...], t.Tuple[int, str, str]],
                 tools: t.Sequence[str] = ("nft",)) -> None:
        self.answers = answers
        self.tools = set(tools)
        self.calls: t.List[t.Tuple[t.Tuple[str, ...], t.Optional[str]]] = []

    def run(self, argv: t.Sequence[str], data: t.Optional[str] = None) -> t.Tuple[int, str, str]:
        key = tuple(a.rsplit("/", 1)[-1] if i == 0 else a for i, a in enumerate(argv))
        self.calls.append((key, data))
        return self.answers.get(key, (0, "", ""))

    def which(self, name: str) -> t.Optional[str]:
        return f"/usr/sbin/{name}" if name in self.tools else None


def nft_json(*items: t.Dict[str, t.Any]) -> str:
    return json.dumps({"nftables": [{"metainfo": {"version": "1.0.6"}}, *items]})


HOST_DENY = [
    {"table": {"family": "inet", "name": "hostfw", "handle": 1}},
    {"chain": {"family": "inet", "table": "hostfw", "name": "output", "handle": 1, "type": "filter",
               "hook": "output", "prio": 0, "policy": "drop"}},
    {"rule": {"family": "inet", "table": "hostfw", "chain": "output", "handle": 2,
              "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established"]}},
                       {"accept": None}]}},
]


def test_nftables_fresh_install_is_one_transaction_with_hooks_into_the_default_deny() -> None:
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, nft_json(*HOST_DENY), "")})
    backend = _nftables.NftablesBackend(runner)
    current = backend.read_current()
    assert current.empty and current.meta["deny_chains"][0]["table"] == "hostfw"
    desired = backend.compute_desired(POLICY, current)
    plan = backend.plan(current, desired)
    assert [c.argv for c in plan.commands] == [("/usr/sbin/nft", "-f", "-")]
    script = plan.commands[0].stdin or ""
    assert script.startswith("table inet protectnet_epns {\n")
    assert "add set inet hostfw protectnet_epns_epns_v4 { type ipv4_addr; flags interval; }" in script
    assert ("insert rule inet hostfw output ip daddr @protectnet_epns_epns_v4 tcp dport { 443, 8883 } accept "
            'comment "protectnet_epns epns ipv4 tcp 443,8883"') in script
    assert "flush" not in script and "delete" not in script


def _installed_nft() -> t.List[t.Dict[str, t.Any]]:
    items = list(HOST_DENY)
    items[1:1] = [{"set": {"family": "inet", "table": "hostfw", "name": "protectnet_epns_epns_v4",
                           "type": "ipv4_addr", "flags": ["interval"], "elem": ["198.18.1.10"]}},
                  {"set": {"family": "inet", "table": "hostfw", "name": "protectnet_epns_epns_v6",
                           "type": "ipv6_addr", "flags": ["interval"], "elem": ["2001:db8:0:1::10"]}}]
    items.insert(3, {"rule": {"family": "inet", "table": "hostfw", "chain": "output", "handle": 7,
                              "comment": "protectnet_epns epns ipv6 tcp 443,8883", "expr": []}})
    items.insert(4, {"rule": {"family": "inet", "table": "hostfw", "chain": "output", "handle": 6,
                              "comment": "protectnet_epns epns ipv4 tcp 443,8883", "expr": []}})
    items += [
        {"table": {"family": "inet", "name": "protectnet_epns", "handle": 2}},
        {"set": {"family": "inet", "table": "protectnet_epns", "name": "epns_v4", "type": "ipv4_addr",
                 "flags": ["interval"], "elem": ["198.18.1.10"]}},
        {"set": {"family": "inet", "table": "protectnet_epns", "name": "epns_v6", "type": "ipv6_addr",
                 "flags": ["interval"], "elem": [{"prefix": {"addr": "2001:db8:0:1::10", "len": 128}}]}},
        {"chain": {"family": "inet", "table": "protectnet_epns", "name": "output", "handle": 1, "type": "filter",
                   "hook": "output", "prio": 0, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "protectnet_epns", "chain": "output", "handle": 4,
                  "comment": "protectnet_epns epns ipv4 tcp 443,8883", "expr": []}},
        {"rule": {"family": "inet", "table": "protectnet_epns", "chain": "output", "handle": 5,
                  "comment": "protectnet_epns epns ipv6 tcp 443,8883", "expr": []}},
    ]
    return items


def test_nftables_installed_state_is_idempotent_and_an_address_change_is_a_set_update() -> None:
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, nft_json(*_installed_nft()), "")})
    backend = _nftables.NftablesBackend(runner)
    current = backend.read_current()
    assert not backend.diff(current, backend.compute_desired(POLICY, current)).changed
    assert not backend.plan(current, backend.compute_desired(POLICY, current))
    moved = backend.compute_desired(MOVED, current)
    assert backend.script(current, moved) == (
        "delete element inet hostfw protectnet_epns_epns_v4 { 198.18.1.10/32 }\n"
        "add element inet hostfw protectnet_epns_epns_v4 { 198.18.1.11/32 }\n"
        "delete element inet protectnet_epns epns_v4 { 198.18.1.10/32 }\n"
        "add element inet protectnet_epns epns_v4 { 198.18.1.11/32 }\n")
    # state=absent: our rules by handle, our sets in the host's table, our table; nothing of the host's
    assert backend.script(current, State()) == (
        "delete rule inet hostfw output handle 6\n"
        "delete rule inet hostfw output handle 7\n"
        "delete set inet hostfw protectnet_epns_epns_v4\n"
        "delete set inet hostfw protectnet_epns_epns_v6\n"
        "delete table inet protectnet_epns\n")


def test_nftables_hook_below_other_rules_is_moved_back_to_the_top() -> None:
    items = _installed_nft()
    # swap: the host's rule (handle 2) now comes before our two hooks
    host_rule = next(i for i in items if "rule" in i and i["rule"]["handle"] == 2)
    items.remove(host_rule)
    items.insert(3, host_rule)
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, nft_json(*items), "")})
    backend = _nftables.NftablesBackend(runner)
    current = backend.read_current()
    script = backend.script(current, backend.compute_desired(POLICY, current))
    assert "delete rule inet hostfw output handle 6\n" in script
    assert "insert rule inet hostfw output ip daddr @protectnet_epns_epns_v4" in script


def test_nftables_persist_file_and_include_block(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    main = tmp_path / "nftables.conf"
    main.write_text("#!/usr/sbin/nft -f\nflush ruleset\ntable inet hostfw {\n}\n")
    monkeypatch.setattr(_nftables, "MAIN_CONFS", (str(main),))
    monkeypatch.setattr(_nftables, "PERSIST_FILE", str(tmp_path / "own.nft"))
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, nft_json(*HOST_DENY), "")})
    backend = _nftables.NftablesBackend(runner, Settings(persist=True))
    current = backend.read_current()
    changes = {c.path: c for c in backend.persist(backend.compute_desired(POLICY, current))}
    included = changes[str(main)].content or ""
    assert included.endswith(f'\n\n{_nftables.BLOCK_BEGIN}\ninclude "{tmp_path / "own.nft"}"\n{_nftables.BLOCK_END}\n')
    own = changes[str(tmp_path / "own.nft")].content or ""
    assert "delete table inet protectnet_epns" in own and "insert rule inet hostfw output" in own
    # removing gives back the file as it was, byte for byte
    assert _nftables._with_include(included, keep=False) == main.read_text()
    # a service configuration that nothing loads at boot is said, not hidden
    for enabled, warned in ((True, False), (None, False), (False, True)):
        monkeypatch.setattr(_nftables, "service_enabled", lambda enabled=enabled: enabled)
        backend.warnings.clear()
        backend.persist(backend.compute_desired(POLICY, current))
        assert any("nftables.service is not enabled" in w for w in backend.warnings) is warned


def test_engine_check_mode_runs_only_read_commands(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    monkeypatch.setattr(_nftables, "MAIN_CONFS", ())
    runner = FakeRunner({("nft", "-j", "list", "ruleset"): (0, nft_json(*HOST_DENY), "")})
    request = _engine.Request(spec=PolicySpec("198.18.1.10", (8883, 443)), backend="auto")
    result = _engine.run(request, runner, check_mode=True)
    assert result["changed"] is True and result["backend"] == "nftables"
    assert "default-deny" in result["backend_reason"]
    assert {call[0] for call in runner.calls} <= READ_ONLY
    assert result["commands"][0]["argv"] == ["/usr/sbin/nft", "-f", "-"]


def test_engine_unknown_and_missing_backends_fail_cleanly() -> None:
    runner = FakeRunner({})
    with pytest.raises(FirewallError, match="backend 'pf' is unknown"):
        _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (443,)), backend="pf"), runner, True)
    with pytest.raises(FirewallError, match="backend ufw is not installed on this host"):
        _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (443,)), backend="ufw"), runner, True)
    with pytest.raises(FirewallError, match="backend firewalld is not installed on this host"):
        _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (443,)), backend="firewalld"), runner, True)
    with pytest.raises(FirewallError, match="backend nftables is not installed"):
        _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (443,)), backend="nftables"),
                    FakeRunner({}, tools=()), True)
    with pytest.raises(FirewallError, match="no usable firewall backend"):
        _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (443,))), FakeRunner({}, tools=()), True)


def test_failed_apply_undoes_earlier_steps() -> None:
    runner = FakeRunner({("iptables-legacy-restore", "--noflush"): (1, "", "iptables-restore: line 3 failed")},
                        tools=("iptables-legacy-save", "iptables-legacy-restore", "ipset"))
    backend = _iptables.IptablesBackend(runner, Settings(options={"iptables_variant": "legacy", "ipset": True}))
    current = backend.read_current()
    plan = backend.plan(current, backend.compute_desired(POLICY, current))
    with pytest.raises(ApplyError) as caught:
        backend.apply(plan)
    assert caught.value.rolled_back
    ran = [call[0] for call in runner.calls[-3:]]
    assert ran == [("ipset", "-exist", "restore"), ("iptables-legacy-restore", "--noflush"),
                   ("ipset", "destroy", "protectnet_epns_epns_v4")]


SAVED = """# Generated by iptables-save v1.8.9
*filter
:INPUT ACCEPT [5:296]
:FORWARD ACCEPT [0:0]
:OUTPUT DROP [0:0]
:PROTECTNET_EPNS - [0:0]
-A OUTPUT -m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS
-A OUTPUT -p tcp -m tcp --sport 22 -j ACCEPT
-A PROTECTNET_EPNS -d 198.18.1.10/32 -p tcp -m multiport --dports 443,8883 -m comment --comment "{comment}" -j ACCEPT
COMMIT
""".format(comment="protectnet_epns epns ipv4 tcp 443,8883")


def test_iptables_without_ipset_rewrites_only_its_chain() -> None:
    runner = FakeRunner({("iptables-legacy-save",): (0, SAVED, "")},
                        tools=("iptables-legacy-save", "iptables-legacy-restore"))
    backend = _iptables.IptablesBackend(runner, Settings(options={"iptables_variant": "legacy", "ipset": False}))
    current = backend.read_current()
    v4_only = Policy((Group("epns", (443, 8883), ("198.18.1.10/32",), ()),))
    assert not backend.diff(current, backend.compute_desired(v4_only, current)).changed
    moved = Policy((Group("epns", (443, 8883), ("198.18.1.11/32",), ()),))
    assert backend.restore_script("ipv4", current, backend.compute_desired(moved, current)) == (
        "*filter\n:PROTECTNET_EPNS - [0:0]\n"
        "-A PROTECTNET_EPNS -d 198.18.1.11/32 -p tcp -m multiport --dports 443,8883 -m comment "
        '--comment "protectnet_epns epns ipv4 tcp 443,8883" -j ACCEPT\nCOMMIT\n')
    assert backend.restore_script("ipv4", current, State()) == (
        '*filter\n-D OUTPUT -m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS\n'
        "-F PROTECTNET_EPNS\n-X PROTECTNET_EPNS\nCOMMIT\n")


def test_iptables_saved_rules_file_edit_is_reversible() -> None:
    before = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
    ours = ([":PROTECTNET_EPNS - [0:0]"], [f"-A OUTPUT {_iptables.JUMP_SPEC}"],
            ["-A PROTECTNET_EPNS -d 1.2.3.4/32 -j ACCEPT"])
    edited = _iptables._edit_rules_file(before, ours) or ""
    assert edited == ("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n:PROTECTNET_EPNS - [0:0]\n"
                      f"-A OUTPUT {_iptables.JUMP_SPEC}\n-A INPUT -i lo -j ACCEPT\n"
                      "-A PROTECTNET_EPNS -d 1.2.3.4/32 -j ACCEPT\nCOMMIT\n")
    assert _iptables._edit_rules_file(edited, None) == before
    created = _iptables._edit_rules_file(None, ours)
    assert created is not None and created.startswith(_iptables.CREATED_MARK)
    assert _iptables._edit_rules_file(created, None) is None


def test_nftables_service_enabled_is_read_from_the_unit_links(tmp_path: t.Any) -> None:
    root = str(tmp_path)
    assert _nftables.service_enabled(root) is None  # no nftables.service: another init system, unknown
    (tmp_path / "lib/systemd/system").mkdir(parents=True)
    (tmp_path / "lib/systemd/system/nftables.service").write_text("[Unit]\n")
    assert _nftables.service_enabled(root) is False  # installed, not enabled (Debian's default)
    wants = tmp_path / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True)
    (wants / "nftables.service").symlink_to("/lib/systemd/system/nftables.service")
    assert _nftables.service_enabled(root) is True
    (tmp_path / "etc/systemd/system/nftables.service").symlink_to("/dev/null")
    assert _nftables.service_enabled(root) is False  # masked
