"""firewalld backend against recorded firewall-cmd 1.3.3 output: parsing, plans (exact argv, whole XML objects,
one reload), idempotence, address changes without reload, state=absent, persistence, detection."""
from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from _fake_runner import FakeRunner
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import _engine, _firewalld, _firewalld_text
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import BackendOptions
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    ApplyError,
    FirewallError,
    Group,
    Policy,
    PolicySpec,
    State,
)

POLICY = Policy((Group("epns", (443, 8883), ("198.18.1.10/32",), ("2001:db8:0:1::10/128",)),))
MOVED = Policy((Group("epns", (443, 8883), ("198.18.1.11/32",), ("2001:db8:0:1::10/128",)),))
pytestmark = pytest.mark.usefixtures("firewalld_config_dir")
FC = "/usr/sbin/firewall-cmd"

# recorded in the lab (firewalld 1.3.3)
INFO_POLICY = "\n".join([
    "protectnet_epns (active)",
    "  priority: -32768",
    "  target: CONTINUE",
    "  ingress-zones: HOST",
    "  egress-zones: ANY",
    "  services: ",
    "  ports: ",
    "  protocols: ",
    "  masquerade: no",
    "  forward-ports: ",
    "  source-ports: ",
    "  icmp-blocks: ",
    "  rich rules: ",
    '\trule family="ipv4" destination ipset="protectnet_epns_epns_v4" port port="443" protocol="tcp" accept',
    '\trule family="ipv4" destination ipset="protectnet_epns_epns_v4" port port="8883" protocol="tcp" accept',
    '\trule family="ipv6" destination ipset="protectnet_epns_epns_v6" port port="443" protocol="tcp" accept',
    '\trule family="ipv6" destination ipset="protectnet_epns_epns_v6" port port="8883" protocol="tcp" accept',
    "",
])
INFO_V4 = """protectnet_epns_epns_v4
  type: hash:net
  options: family=inet
  entries: 198.18.1.10/32
"""
INFO_V6 = """protectnet_epns_epns_v6
  type: hash:net
  options: family=inet6
  entries: 2001:db8:0:1::10/128
"""
MISSING = (140, "", "Error: INVALID_POLICY: protectnet_epns\n")


def runner(installed: bool = True, running: bool = True) -> FakeRunner:
    answers: t.Dict[t.Tuple[str, ...], t.Tuple[int, str, str]] = {
        ("firewall-cmd", "--state"): (0, "running\n", "") if running else (252, "", "not running\n"),
        ("firewall-cmd", "--info-policy", "protectnet_epns"): (0, INFO_POLICY, "") if installed else MISSING,
        ("firewall-cmd", "--get-ipsets"): (0, "allow-host-ipv6 protectnet_epns_epns_v4 protectnet_epns_epns_v6\n"
                                           if installed else "allow-host-ipv6\n", ""),
        ("firewall-cmd", "--info-ipset", "protectnet_epns_epns_v4"): (0, INFO_V4, ""),
        ("firewall-cmd", "--info-ipset", "protectnet_epns_epns_v6"): (0, INFO_V6, ""),
        ("firewall-cmd", "--version"): (0, "1.3.3\n", ""),
        ("firewall-cmd", "--direct", "--get-all-rules"): (0, "", ""),
        ("firewall-cmd", "--direct", "--get-all-chains"): (0, "", ""),
    }
    return FakeRunner(answers, tools=("firewall-cmd", "tee", "rm"))


def test_reads_the_runtime_and_a_second_run_is_empty() -> None:
    backend = _firewalld.FirewalldBackend(runner())
    current = backend.read_current()
    assert current.containers == {"policy protectnet_epns": "HOST -> ANY, target CONTINUE, priority -32768",
                                  "ipset protectnet_epns_epns_v4": "hash:net family=inet",
                                  "ipset protectnet_epns_epns_v6": "hash:net family=inet6"}
    assert current.sets["ipset protectnet_epns_epns_v6"] == frozenset({"2001:db8:0:1::10/128"})
    assert len(current.rules) == 4
    desired = backend.compute_desired(POLICY, current)
    assert current == desired
    assert not backend.plan(current, desired)


def test_fresh_install_stages_whole_xml_objects_checks_and_reloads_once(firewalld_config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(runner(installed=False))
    current = backend.read_current()
    assert current.empty
    desired = backend.compute_desired(POLICY, current)
    plan = backend.plan(current, desired)
    argvs = [s.do.argv for s in plan.steps]
    policy = str(firewalld_config_dir / "policies" / "protectnet_epns.xml")
    v4 = str(firewalld_config_dir / "ipsets" / "protectnet_epns_epns_v4.xml")
    v6 = str(firewalld_config_dir / "ipsets" / "protectnet_epns_epns_v6.xml")
    assert argvs == [("/usr/sbin/tee", v4), ("/usr/sbin/tee", v6), ("/usr/sbin/tee", policy),
                     (FC, "--check-config"), (FC, "--reload"),
                     ("/usr/sbin/rm", "-f", v4), ("/usr/sbin/rm", "-f", v6), ("/usr/sbin/rm", "-f", policy)]
    assert not any("--permanent" in a for a in argvs)
    xml = plan.steps[2].do.stdin or ""
    assert '<policy target="CONTINUE" priority="-32768">' in xml
    assert xml.count("<rule family=") == 4 and '<port port="8883" protocol="tcp"/>' in xml
    assert "<entry>198.18.1.10/32</entry>" in (plan.steps[0].do.stdin or "")
    # the first staged file's undo also reloads, so a failure after the reload puts the runtime back
    assert plan.steps[0].undo == [_firewalld.Command(("/usr/sbin/rm", "-f", v4)), _firewalld.Command((FC, "--reload"))]
    # persistence writes the same objects; persist: false writes nothing
    files = {c.path: c.content for c in backend.persist(desired)}
    assert files[policy] == xml and set(files) == {policy, v4, v6}
    assert _firewalld.FirewalldBackend(runner(), BackendOptions(persist=False)).persist(desired) == []


def test_address_change_is_runtime_entries_without_reload_and_an_ipset_file(firewalld_config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(runner())
    current = backend.read_current()
    for path, content in backend.render_files(current).items():
        Path(path).write_text(content)
    moved = backend.compute_desired(MOVED, current)
    assert backend.diff(current, moved).sets_only
    plan = backend.plan(current, moved)
    assert [s.do.argv for s in plan.steps] == [
        (FC, "--ipset", "protectnet_epns_epns_v4", "--add-entry", "198.18.1.11/32"),
        (FC, "--ipset", "protectnet_epns_epns_v4", "--remove-entry", "198.18.1.10/32")]
    assert plan.steps[0].undo[0].argv[-2:] == ("--remove-entry", "198.18.1.11/32")
    changes = backend.persist(moved)
    assert [c.path for c in changes] == [str(firewalld_config_dir / "ipsets" / "protectnet_epns_epns_v4.xml")]
    assert "<entry>198.18.1.11/32</entry>" in (changes[0].content or "")


def test_absent_removes_the_objects_and_the_persisted_files(firewalld_config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(runner())
    current = backend.read_current()
    for path, content in backend.render_files(current).items():
        Path(path).write_text(content)
    (firewalld_config_dir / "policies" / "host-own.xml").write_text("<policy/>\n")
    plan = backend.plan(current, State())
    argvs = [s.do.argv for s in plan.steps]
    assert argvs[:3] == [("/usr/sbin/rm", "-f", str(firewalld_config_dir / "ipsets" / "protectnet_epns_epns_v4.xml")),
                         ("/usr/sbin/rm", "-f", str(firewalld_config_dir / "ipsets" / "protectnet_epns_epns_v6.xml")),
                         ("/usr/sbin/rm", "-f", str(firewalld_config_dir / "policies" / "protectnet_epns.xml"))]
    assert argvs[3:5] == [(FC, "--check-config"), (FC, "--reload")]
    assert not any("host-own" in " ".join(a) for a in argvs)
    removals = backend.persist(State())
    assert sorted(c.path for c in removals) == sorted(backend.render_files(current)) and not any(
        c.content for c in removals)


def test_failed_reload_undoes_the_staged_files_and_reloads(firewalld_config_dir: Path) -> None:
    fake = runner(installed=False)
    fake.answers[("firewall-cmd", "--check-config")] = (1, "", "Error: INVALID_IPSET: bad entry\n")
    fake.answers[("firewall-cmd", "--reload")] = (0, "success\n", "")
    for staged in ("ipsets/protectnet_epns_epns_v4.xml", "ipsets/protectnet_epns_epns_v6.xml",
                   "policies/protectnet_epns.xml"):
        fake.answers[("tee", str(firewalld_config_dir / staged))] = (0, "", "")
        fake.answers[("rm", "-f", str(firewalld_config_dir / staged))] = (0, "", "")
    backend = _firewalld.FirewalldBackend(fake)
    current = backend.read_current()
    with pytest.raises(ApplyError) as caught:
        backend.apply(backend.plan(current, backend.compute_desired(POLICY, current)))
    assert caught.value.rolled_back
    tail = [call[0][:2] for call in fake.calls[-5:]]
    assert tail == [("firewall-cmd", "--check-config"), ("rm", "-f"), ("rm", "-f"), ("rm", "-f"),
                    ("firewall-cmd", "--reload")]


def test_detection_running_stopped_missing() -> None:
    assert _firewalld.FirewalldBackend.detect(runner()).usable
    stopped = _firewalld.FirewalldBackend.detect(runner(running=False))
    assert stopped.installed and not stopped.usable
    with pytest.raises(FirewallError, match="installed but not usable: the firewalld daemon is not running "
                                            r"\(firewall-cmd --state: not running\)"):
        _firewalld.FirewalldBackend(runner(running=False)).require_usable()
    assert not _firewalld.FirewalldBackend.detect(FakeRunner({}, tools=())).installed


def test_old_firewalld_without_policies_fails_clearly_in_policy_mode() -> None:
    fake = runner()
    fake.answers[("firewall-cmd", "--info-policy", "protectnet_epns")] = (
        2, "", "firewall-cmd: error: unrecognized arguments: --info-policy protectnet_epns\n")
    with pytest.raises(FirewallError, match="no policy objects"):
        _firewalld.FirewalldBackend(fake, BackendOptions(options={"firewalld_mode": "policy"})).read_current()
    fake.answers[("firewall-cmd", "--version")] = (0, "0.8.6\n", "")
    with pytest.raises(FirewallError, match=r"firewalld 0\.8\.6 has no policy objects .*firewalld_mode direct"):
        _firewalld.FirewalldBackend(fake, BackendOptions(options={"firewalld_mode": "policy"})).read_current()
    # auto on an unknown version that rejects --info-policy: direct rules
    fake.answers[("firewall-cmd", "--version")] = (0, "", "")
    assert _firewalld.FirewalldBackend(fake).read_current().meta["mode"] == "direct"


def test_engine_auto_picks_running_firewalld_and_check_mode_only_reads() -> None:
    fake = runner(installed=False)
    fake.tools |= {"nft", "ufw"}
    fake.answers[("nft", "-j", "list", "ruleset")] = (0, '{"nftables": [{"metainfo": {"version": "1.0.6"}}]}', "")
    fake.answers[("ufw", "status", "verbose")] = (0, "Status: inactive\n", "")
    result = _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (8883, 443))), fake, check_mode=True)
    assert result["backend"] == "firewalld"
    assert result["backend_reason"] == "auto: firewalld is the running firewall daemon (firewalld is running)"
    reads = {("firewall-cmd", "--state"), ("firewall-cmd", "--info-policy", "protectnet_epns"),
             ("firewall-cmd", "--get-ipsets"), ("nft", "-j", "list", "ruleset"), ("ufw", "status", "verbose"),
             ("firewall-cmd", "--version"), ("firewall-cmd", "--direct", "--get-all-rules"),
             ("firewall-cmd", "--direct", "--get-all-chains")}
    assert {call[0] for call in fake.calls} <= reads



# -- direct mode (firewalld < 0.9, or firewalld_mode: direct) --------------------------------------------------------
# recorded in the lab (firewalld 1.3.3, `--direct --get-all-rules` / `--get-all-chains`)
DIRECT_RULES = "\n".join([
    "ipv4 filter OUTPUT 10 -m conntrack --ctstate ESTABLISHED -j ACCEPT",
    "ipv4 filter OUTPUT 0 -m comment --comment 'protectnet_epns jump' -j PROTECTNET_EPNS",
    "ipv4 filter PROTECTNET_EPNS 0 -p tcp -m set --match-set protectnet_epns_epns_v4 dst -m multiport --dports "
    "443,8883 -m comment --comment 'protectnet_epns epns ipv4 tcp 443,8883' -j ACCEPT",
    "ipv4 filter OUTPUT 99 -j REJECT",
    "ipv6 filter OUTPUT 0 -m comment --comment 'protectnet_epns jump' -j PROTECTNET_EPNS",
    "ipv6 filter PROTECTNET_EPNS 0 -p tcp -m set --match-set protectnet_epns_epns_v6 dst -m multiport --dports "
    "443,8883 -m comment --comment 'protectnet_epns epns ipv6 tcp 443,8883' -j ACCEPT",
    "",
])
DIRECT_CHAINS = "ipv4 filter PROTECTNET_EPNS\nipv6 filter PROTECTNET_EPNS\n"
HOST_DIRECT_XML = """<?xml version="1.0" encoding="utf-8"?>
<direct>
  <rule priority="10" table="filter" ipv="ipv4" chain="OUTPUT">-m conntrack --ctstate ESTABLISHED -j ACCEPT</rule>
  <rule priority="99" table="filter" ipv="ipv4" chain="OUTPUT">-j REJECT</rule>
</direct>
"""


def old_runner(version: str = "0.8.2", installed: bool = True) -> FakeRunner:
    fake = runner(installed=installed)
    fake.answers[("firewall-cmd", "--version")] = (0, version + "\n", "")
    fake.answers[("firewall-cmd", "--info-policy", "protectnet_epns")] = (
        2, "", "firewall-cmd: error: unrecognized arguments: --info-policy protectnet_epns\n")
    if installed:
        fake.answers[("firewall-cmd", "--direct", "--get-all-rules")] = (0, DIRECT_RULES, "")
        fake.answers[("firewall-cmd", "--direct", "--get-all-chains")] = (0, DIRECT_CHAINS, "")
    else:
        host_only = "\n".join(line for line in DIRECT_RULES.splitlines() if "protectnet" not in line.lower())
        fake.answers[("firewall-cmd", "--direct", "--get-all-rules")] = (0, host_only + "\n", "")
    return fake


@pytest.mark.parametrize("version, mode, ipsets, check_config", [
    ("1.3.3", "policy", True, True), ("0.9.0", "policy", True, True), ("0.8.6", "direct", True, True),
    ("0.4.4.5", "direct", True, True), ("0.4.3.2", "direct", True, False), ("0.3.9", "direct", False, False)])
def test_version_detection_picks_the_mode(version: str, mode: str, ipsets: bool, check_config: bool) -> None:
    caps = _firewalld.FirewalldBackend(old_runner(version)).capabilities()
    assert (caps["mode"], caps["ipsets"], caps["check_config"]) == (mode, ipsets, check_config)
    assert _firewalld.parse_version("1.3.3\n") == (1, 3, 3)
    assert _firewalld.pick_mode("direct", (1, 3, 3)) == "direct"


def test_direct_mode_reads_only_its_own_direct_rules_and_a_second_run_is_empty() -> None:
    backend = _firewalld.FirewalldBackend(old_runner())
    current = backend.read_current()
    assert current.meta["mode"] == "direct"
    assert current.containers == {"direct chain ipv4 filter PROTECTNET_EPNS": "ipv4 filter PROTECTNET_EPNS",
                                  "direct chain ipv6 filter PROTECTNET_EPNS": "ipv6 filter PROTECTNET_EPNS",
                                  "ipset protectnet_epns_epns_v4": "hash:net family=inet",
                                  "ipset protectnet_epns_epns_v6": "hash:net family=inet6"}
    assert current.rules["direct ipv4 filter OUTPUT 0: protectnet_epns jump"] == (
        '-m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS')
    assert len(current.rules) == 4 and not any("REJECT" in r or "conntrack" in r for r in current.rules.values())
    desired = backend.compute_desired(POLICY, current)
    assert current == desired and not backend.plan(current, desired)


def test_direct_mode_fresh_install_stages_direct_xml_beside_the_hosts_rules(firewalld_config_dir: Path) -> None:
    (firewalld_config_dir / "direct.xml").write_text(HOST_DIRECT_XML)
    backend = _firewalld.FirewalldBackend(old_runner(installed=False))
    current = backend.read_current()
    assert current.empty
    desired = backend.compute_desired(POLICY, current)
    plan = backend.plan(current, desired)
    direct = str(firewalld_config_dir / "direct.xml")
    v4 = str(firewalld_config_dir / "ipsets" / "protectnet_epns_epns_v4.xml")
    v6 = str(firewalld_config_dir / "ipsets" / "protectnet_epns_epns_v6.xml")
    assert [s.do.argv for s in plan.steps] == [
        ("/usr/sbin/tee", v4), ("/usr/sbin/tee", v6), ("/usr/sbin/tee", direct), (FC, "--check-config"),
        (FC, "--reload"), ("/usr/sbin/rm", "-f", v4), ("/usr/sbin/rm", "-f", v6), ("/usr/sbin/tee", direct)]
    staged = plan.steps[2].do.stdin or ""
    assert plan.steps[-1].do.stdin == HOST_DIRECT_XML and plan.steps[2].undo[0].stdin == HOST_DIRECT_XML
    lines = staged.splitlines()
    assert lines[1] == "<direct>" and lines[-3:] == HOST_DIRECT_XML.splitlines()[-3:]
    assert lines[2:8] == [
        '  <chain ipv="ipv4" table="filter" chain="PROTECTNET_EPNS"/>',
        '  <chain ipv="ipv6" table="filter" chain="PROTECTNET_EPNS"/>',
        '  <rule ipv="ipv4" table="filter" chain="OUTPUT" priority="0">-m comment --comment "protectnet_epns jump" '
        "-j PROTECTNET_EPNS</rule>",
        '  <rule ipv="ipv4" table="filter" chain="PROTECTNET_EPNS" priority="0">-p tcp -m set --match-set '
        'protectnet_epns_epns_v4 dst -m multiport --dports 443,8883 -m comment --comment "protectnet_epns epns ipv4 '
        'tcp 443,8883" -j ACCEPT</rule>',
        '  <rule ipv="ipv6" table="filter" chain="OUTPUT" priority="0">-m comment --comment "protectnet_epns jump" '
        "-j PROTECTNET_EPNS</rule>",
        '  <rule ipv="ipv6" table="filter" chain="PROTECTNET_EPNS" priority="0">-p tcp -m set --match-set '
        'protectnet_epns_epns_v6 dst -m multiport --dports 443,8883 -m comment --comment "protectnet_epns epns ipv6 '
        'tcp 443,8883" -j ACCEPT</rule>']
    files = {c.path: c for c in backend.persist(desired)}
    assert files[direct].content == staged and files[direct].before == HOST_DIRECT_XML and set(files) == {
        direct, v4, v6}
    # absent gives direct.xml back byte for byte; a file we created goes away entirely
    Path(direct).write_text(staged)
    assert _firewalld_text.merge_direct_xml(staged, []) == HOST_DIRECT_XML
    created = _firewalld_text.merge_direct_xml(None, backend.direct_lines(desired))
    assert created and _firewalld_text.DEFAULT_NAMES.direct_mark in created
    assert _firewalld_text.merge_direct_xml(created, []) is None
    assert [c.content for c in backend.persist(State()) if c.path == direct] == [HOST_DIRECT_XML]
    # persist: false leaves direct.xml as the host has it
    assert [c.content for c in _firewalld.FirewalldBackend(old_runner(), BackendOptions(persist=False)).persist(desired)
            if c.path == direct] == [HOST_DIRECT_XML]


def test_direct_mode_address_change_is_ipset_entries_only(firewalld_config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(old_runner())
    current = backend.read_current()
    moved = backend.compute_desired(MOVED, current)
    assert backend.diff(current, moved).sets_only
    assert [s.do.argv for s in backend.plan(current, moved).steps] == [
        (FC, "--ipset", "protectnet_epns_epns_v4", "--add-entry", "198.18.1.11/32"),
        (FC, "--ipset", "protectnet_epns_epns_v4", "--remove-entry", "198.18.1.10/32")]


def test_direct_mode_absent_removes_only_ours_with_one_reload(firewalld_config_dir: Path) -> None:
    backend = _firewalld.FirewalldBackend(old_runner())
    current = backend.read_current()
    mine = _firewalld_text.merge_direct_xml(HOST_DIRECT_XML, backend.direct_lines(current))
    (firewalld_config_dir / "direct.xml").write_text(mine or "")
    plan = backend.plan(current, State())
    argvs = [s.do.argv for s in plan.steps]
    assert argvs.count((FC, "--reload")) == 1
    staged = next(s.do.stdin for s in plan.steps if s.do.argv[-1].endswith("direct.xml"))
    assert staged == HOST_DIRECT_XML
    # rollback / read-back: plan(after, before) recreates everything from what read_current() found
    (firewalld_config_dir / "direct.xml").write_text(HOST_DIRECT_XML)
    back = backend.plan(State(meta=current.meta), current)
    assert "PROTECTNET_EPNS" in (next(s.do.stdin for s in back.steps if s.do.argv[-1].endswith("direct.xml")) or "")


def test_direct_mode_without_ipsets_one_rule_per_network_and_address_change_without_reload() -> None:
    fake = old_runner("0.3.14", installed=False)
    backend = _firewalld.FirewalldBackend(fake)
    desired = backend.compute_desired(POLICY, backend.read_current())
    assert not any(k.startswith("ipset ") for k in desired.containers)
    key = "direct ipv4 filter PROTECTNET_EPNS 0: protectnet_epns epns ipv4 tcp 443,8883"
    assert desired.sets[key] == frozenset({"198.18.1.10/32"}) and "-d <networks>" in desired.rules[key]
    assert not any(s.do.argv[1:2] == ("--check-config",) for s in backend.plan(backend.read_current(), desired).steps)
    # the runtime as firewalld reports it after the install
    fake.answers[("firewall-cmd", "--direct", "--get-all-rules")] = (0, "\n".join([
        "ipv4 filter OUTPUT 0 -m comment --comment 'protectnet_epns jump' -j PROTECTNET_EPNS",
        "ipv4 filter PROTECTNET_EPNS 0 -p tcp -d 198.18.1.10/32 -m multiport --dports 443,8883 -m comment "
        "--comment 'protectnet_epns epns ipv4 tcp 443,8883' -j ACCEPT",
        "ipv6 filter OUTPUT 0 -m comment --comment 'protectnet_epns jump' -j PROTECTNET_EPNS",
        "ipv6 filter PROTECTNET_EPNS 0 -p tcp -d 2001:db8:0:1::10/128 -m multiport --dports 443,8883 -m comment "
        "--comment 'protectnet_epns epns ipv6 tcp 443,8883' -j ACCEPT", ""]), "")
    fake.answers[("firewall-cmd", "--direct", "--get-all-chains")] = (0, DIRECT_CHAINS, "")
    current = backend.read_current()
    assert current == desired
    moved = backend.compute_desired(MOVED, current)
    plan = backend.plan(current, moved)
    tail = ("-m", "multiport", "--dports", "443,8883", "-m", "comment", "--comment",
            "protectnet_epns epns ipv4 tcp 443,8883", "-j", "ACCEPT")
    assert [s.do.argv for s in plan.steps] == [
        (FC, "--direct", "--add-rule", "ipv4", "filter", "PROTECTNET_EPNS", "0", "-p", "tcp", "-d",
         "198.18.1.11/32", *tail),
        (FC, "--direct", "--remove-rule", "ipv4", "filter", "PROTECTNET_EPNS", "0", "-p", "tcp", "-d",
         "198.18.1.10/32", *tail)]
    assert plan.steps[0].undo[0].argv[2] == "--remove-rule"
    assert "<rule " in "\n".join(backend.direct_lines(moved)) and "198.18.1.11/32" in "\n".join(
        backend.direct_lines(moved))


def test_ipset_false_forces_one_rule_per_network_in_direct_mode() -> None:
    backend = _firewalld.FirewalldBackend(old_runner("1.3.3", installed=False),
                                          BackendOptions(options={"firewalld_mode": "direct", "ipset": False}))
    desired = backend.compute_desired(POLICY, backend.read_current())
    assert not any(k.startswith(("ipset ", "policy ")) for k in desired.containers)
    assert backend.warnings and "firewalld's own policies" in backend.warnings[0]


def test_switching_policy_to_direct_removes_the_policy(firewalld_config_dir: Path) -> None:
    fake = runner()
    backend = _firewalld.FirewalldBackend(fake, BackendOptions(options={"firewalld_mode": "direct"}))
    current = backend.read_current()
    assert "policy protectnet_epns" in current.containers
    desired = backend.compute_desired(POLICY, current)
    change = backend.diff(current, desired)
    assert "policy protectnet_epns" in change.containers_removed
    assert not change.sets_changed and "ipset protectnet_epns_epns_v4" not in change.containers_removed


def test_engine_reports_the_firewalld_mode_and_check_mode_only_reads() -> None:
    fake = old_runner(installed=False)
    result = _engine.run(_engine.Request(spec=PolicySpec("198.18.1.10", (8883, 443))), fake, check_mode=True)
    assert result["firewalld_mode"] == "direct (firewalld 0.8.2)"
    assert all(call[0][0] == "firewall-cmd" and call[0][1] in ("--state", "--version", "--direct", "--get-ipsets",
                                                                 "--info-policy")
               for call in fake.calls if call[0][0] == "firewall-cmd")
    assert not any(call[0][1:2] == ("--direct",) and call[0][2] not in ("--get-all-rules", "--get-all-chains")
                   for call in fake.calls)
