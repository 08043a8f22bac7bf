"""firewalld, ufw and the nftables TTL-only table per owner tag: epns_firewall (protectnet_epns) and wol_multicast
(protectnet_wol, UDP) side by side never see, change or remove each other's objects."""
from __future__ import annotations

from pathlib import Path

import pytest
from _fake_runner import FakeRunner
from ansible_collections.protectnet.epns.plugins.module_utils._firewall import (
    _firewalld,
    _firewalld_text,
    _nftables,
    _ufw,
)
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._base import BackendOptions
from ansible_collections.protectnet.epns.plugins.module_utils._firewall._model import (
    FirewallError,
    Group,
    Policy,
    State,
)
from test_firewall_backends import HOST_DENY, nft_json
from test_firewall_firewalld_backend import DIRECT_CHAINS, DIRECT_RULES, HOST_DIRECT_XML, old_runner
from test_firewall_firewalld_backend import runner as firewalld_runner
from test_firewall_ufw_backend import ADDED_OURS
from test_firewall_ufw_backend import runner as ufw_runner

WOL = Policy((Group("wol", (9,), ("10.1.2.255/32", "239.255.0.9/32"), ("ff05::9/128",), "udp", 16),))
WOL_TAG = {"tag": "protectnet_wol"}
pytestmark = pytest.mark.usefixtures("firewalld_config_dir")
FC = "/usr/sbin/firewall-cmd"


# -- firewalld ---------------------------------------------------------------------------------------------------
def test_firewalld_wol_policy_is_its_own_udp_policy_and_ipsets(firewalld_config_dir: Path) -> None:
    fake = firewalld_runner()  # epns_firewall's policy and ipsets are installed
    fake.answers[("firewall-cmd", "--info-policy", "protectnet_wol")] = (140, "", "Error: INVALID_POLICY\n")
    wol = _firewalld.FirewalldBackend(fake, BackendOptions(options=WOL_TAG))
    current = wol.read_current()
    assert current.empty  # epns_firewall's objects are not the WoL owner's
    desired = wol.compute_desired(WOL, current)
    assert desired.containers["policy protectnet_wol"] == "HOST -> ANY, target CONTINUE, priority -32767"
    assert desired.sets["ipset protectnet_wol_wol_v4"] == frozenset({"10.1.2.255/32", "239.255.0.9/32"})
    assert ('rule family="ipv6" destination ipset="protectnet_wol_wol_v6" port port="9" protocol="udp" accept'
            in desired.rules.values())
    plan = wol.plan(current, desired)
    policy_file = str(firewalld_config_dir / "policies" / "protectnet_wol.xml")
    staged = {s.do.argv[1]: s.do.stdin for s in plan.steps if s.do.argv[0].endswith("tee")}
    assert set(staged) == {policy_file, str(firewalld_config_dir / "ipsets" / "protectnet_wol_wol_v4.xml"),
                           str(firewalld_config_dir / "ipsets" / "protectnet_wol_wol_v6.xml")}
    xml = staged[policy_file] or ""
    assert '<policy target="CONTINUE" priority="-32767">' in xml and '<port port="9" protocol="udp"/>' in xml
    assert "protectnet_epns" not in "".join(v or "" for v in staged.values())
    # the epns owner still reads exactly its own four rules, and the other way round
    epns = _firewalld.FirewalldBackend(fake)
    assert set(epns.read_current().containers) == {"policy protectnet_epns", "ipset protectnet_epns_epns_v4",
                                                   "ipset protectnet_epns_epns_v6"}


def test_firewalld_wol_reads_back_its_udp_rules_and_a_second_run_is_empty() -> None:
    info = "\n".join(["protectnet_wol (active)", "  priority: -32767", "  target: CONTINUE", "  ingress-zones: HOST",
                      "  egress-zones: ANY", "  masquerade: no", "  rich rules: ",
                      '\trule family="ipv4" destination ipset="protectnet_wol_wol_v4" port port="9" protocol="udp" '
                      "accept",
                      '\trule family="ipv6" destination ipset="protectnet_wol_wol_v6" port port="9" protocol="udp" '
                      "accept", ""])
    fake = FakeRunner({
        ("firewall-cmd", "--info-policy", "protectnet_wol"): (0, info, ""),
        ("firewall-cmd", "--get-ipsets"): (0, "protectnet_epns_epns_v4 protectnet_wol_wol_v4 protectnet_wol_wol_v6\n",
                                           ""),
        ("firewall-cmd", "--info-ipset", "protectnet_wol_wol_v4"): (
            0, "protectnet_wol_wol_v4\n  type: hash:net\n  options: family=inet\n  entries: 10.1.2.255 239.255.0.9\n",
            ""),
        ("firewall-cmd", "--info-ipset", "protectnet_wol_wol_v6"): (
            0, "protectnet_wol_wol_v6\n  type: hash:net\n  options: family=inet6\n  entries: ff05::9\n", ""),
        ("firewall-cmd", "--version"): (0, "1.3.3\n", ""),
        ("firewall-cmd", "--direct", "--get-all-rules"): (0, "", ""),
        ("firewall-cmd", "--direct", "--get-all-chains"): (0, "", ""),
    }, tools=("firewall-cmd", "tee", "rm"))
    wol = _firewalld.FirewalldBackend(fake, BackendOptions(options=WOL_TAG))
    current = wol.read_current()
    assert "ipset protectnet_epns_epns_v4" not in current.containers
    desired = wol.compute_desired(WOL, current)
    assert current == desired and not wol.plan(current, desired)


def test_firewalld_direct_mode_two_owners_share_direct_xml(firewalld_config_dir: Path) -> None:
    direct = firewalld_config_dir / "direct.xml"
    direct.write_text(HOST_DIRECT_XML)
    fake = old_runner(installed=False)
    wol = _firewalld.FirewalldBackend(fake, BackendOptions(options=WOL_TAG))
    desired = wol.compute_desired(WOL, wol.read_current())
    assert desired.containers["direct chain ipv4 filter PROTECTNET_WOL"] == "ipv4 filter PROTECTNET_WOL"
    rule = desired.rules["direct ipv4 filter PROTECTNET_WOL 0: protectnet_wol wol ipv4 udp 9"]
    assert rule.startswith("-p udp -m set --match-set protectnet_wol_wol_v4 dst -m multiport --dports 9")
    with_wol = _firewalld_text.merge_direct_xml(HOST_DIRECT_XML, wol.direct_lines(desired), wol.names)
    assert with_wol is not None and "PROTECTNET_EPNS" not in with_wol
    # epns_firewall adds its own lines beside them, and each owner removes only its own
    epns = _firewalld.FirewalldBackend(old_runner())
    epns_lines = epns.direct_lines(epns.read_current())
    both = _firewalld_text.merge_direct_xml(with_wol, epns_lines)
    assert both is not None and both.count("PROTECTNET_WOL") == 6 and "PROTECTNET_EPNS" in both
    without_epns = _firewalld_text.merge_direct_xml(both, [])
    assert _firewalld_text.merge_direct_xml(without_epns, [], wol.names) == HOST_DIRECT_XML
    # a file one owner created, that the other joined, goes away when both have left, whatever the order
    created = _firewalld_text.merge_direct_xml(None, wol.direct_lines(desired), wol.names)
    joined = _firewalld_text.merge_direct_xml(created, epns_lines)
    assert joined is not None and "<!-- protectnet_wol: created by protectnet.epns (protectnet_wol)" in joined
    assert _firewalld_text.merge_direct_xml(_firewalld_text.merge_direct_xml(joined, [], wol.names), []) is None
    assert _firewalld_text.merge_direct_xml(_firewalld_text.merge_direct_xml(joined, []), [], wol.names) is None


def test_firewalld_direct_mode_wol_ignores_the_epns_rules() -> None:
    fake = old_runner()
    assert "protectnet_epns" in DIRECT_RULES and "PROTECTNET_EPNS" in DIRECT_CHAINS
    wol = _firewalld.FirewalldBackend(fake, BackendOptions(options=WOL_TAG))
    current = wol.read_current()
    assert not current.rules and not any("EPNS" in k or "epns" in k for k in current.containers)


@pytest.mark.parametrize("tag", ["protectnet_epns_wol", "protectnet", "Bad Tag", "x" * 21])
def test_firewalld_refuses_tags_that_overlap_or_do_not_fit(tag: str) -> None:
    with pytest.raises(FirewallError, match=repr(tag).replace("(", r"\(")):
        _firewalld.FirewalldBackend(firewalld_runner(), BackendOptions(options={"tag": tag}))


# -- ufw ---------------------------------------------------------------------------------------------------------
WOL_ADDED = ADDED_OURS + "\n".join([
    "ufw allow out to 239.255.0.9 port 9 proto udp comment 'protectnet_wol wol ipv4 udp 9'",
    "ufw allow out to ff05::9 port 9 proto udp comment 'protectnet_wol wol ipv6 udp 9'", ""])


def test_ufw_wol_rules_are_udp_under_their_own_comment() -> None:
    wol = _ufw.UfwBackend(ufw_runner(), BackendOptions(options=WOL_TAG))
    current = wol.read_current()
    desired = wol.compute_desired(WOL, current)
    argvs = [s.do.argv[1:] for s in wol.plan(current, desired).steps]
    assert argvs == [
        ("allow", "out", "to", "10.1.2.255/32", "port", "9", "proto", "udp", "comment",
         "protectnet_wol wol ipv4 udp 9"),
        ("allow", "out", "to", "239.255.0.9/32", "port", "9", "proto", "udp", "comment",
         "protectnet_wol wol ipv4 udp 9"),
        ("allow", "out", "to", "ff05::9/128", "port", "9", "proto", "udp", "comment", "protectnet_wol wol ipv6 udp 9")]


def test_ufw_owners_read_and_remove_only_their_own_rules() -> None:
    wol = _ufw.UfwBackend(ufw_runner(WOL_ADDED), BackendOptions(options=WOL_TAG))
    current = wol.read_current()
    assert set(current.rules) == {"protectnet_wol wol ipv4 udp 9", "protectnet_wol wol ipv6 udp 9"}
    removed = [s.do.argv[1:] for s in wol.plan(current, State()).steps]
    assert len(removed) == 2 and all(a[0] == "delete" and "udp" in a for a in removed)
    epns = _ufw.UfwBackend(ufw_runner(WOL_ADDED))
    mine = epns.read_current()
    assert all(k.startswith("protectnet_epns ") for k in mine.rules)
    assert not any("protectnet_wol" in " ".join(s.do.argv) for s in epns.plan(mine, State()).steps)
    # a run that keeps one group and drops the other touches only the dropped rule
    only_v4 = Policy((Group("wol", (9,), ("239.255.0.9/32",), (), "udp"),))
    argvs = [s.do.argv[1:] for s in wol.plan(current, wol.compute_desired(only_v4, current)).steps]
    assert argvs == [("delete", "allow", "out", "to", "ff05::9/128", "port", "9", "proto", "udp", "comment",
                      "protectnet_wol wol ipv6 udp 9")]


# -- the nftables TTL-only table ---------------------------------------------------------------------------------
def test_ttl_only_table_rewrites_without_verdict_and_never_hooks_foreign_chains() -> None:
    fake = FakeRunner({("nft", "-j", "list", "ruleset"): (0, nft_json(*HOST_DENY), "")})
    ttl = _nftables.NftablesBackend(fake, BackendOptions(persist=False,
                                                   options={"tag": "protectnet_wolttl", "ttl_only": True}))
    current = ttl.read_current()
    assert current.meta["deny_chains"]  # the host has a default-deny chain, and it is left alone
    desired = ttl.compute_desired(WOL, current)
    assert all(k.startswith("inet protectnet_wolttl ") for k in [*desired.rules, *desired.sets])
    script = ttl.plan(current, desired).steps[0].do.stdin or ""
    assert ('ip daddr @wol_v4 udp dport 9 ip ttl set 16 comment "protectnet_wolttl wol ipv4 udp 9 ttl 16"'
            in script)
    assert "accept" not in script.replace("policy accept", "") and "hostfw" not in script
    with pytest.raises(FirewallError, match="TTL-only"):
        _nftables.NftablesBackend(fake, BackendOptions(options={"ttl_only": True}))
    assert ttl.plan(current, State()).steps == []
