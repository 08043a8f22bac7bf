"""epns_firewall with the firewalld backend, in the lab, against a host's own firewalld default-deny egress.

agent1 picks firewalld by auto (rollback, refresh, extra destinations), agent2 asks for it and goes through the HTTP
proxy. The host's firewalld: a policy `lab-deny-egress` HOST -> ANY, target REJECT, priority 100, with ipv6-icmp
allowed (neighbour discovery, FIREWALL-BACKENDS-NOTES.md) and an unrelated port of its own (9999/tcp).

agent3 runs the direct-rules fallback (firewalld_mode: direct, as on firewalld < 0.9) in the same flow: its default
deny is made of the host's own permanent direct rules in /etc/firewalld/direct.xml (REJECT at priority 99), as
egress filtering was done before firewalld had policies.
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict

import pytest
from _firewall import (
    BLOCK_NEW_SSH,
    CONFIRMED_ROLLBACK_SECONDS,
    DENY_DIRECT,
    assert_absent_restores_the_previous_state,
    assert_check_mode_predicts_and_touches_nothing,
    assert_reachable_after_on_ipv4_and_ipv6,
    assert_second_run_changes_nothing,
    assert_survives_a_reboot,
    files_snapshot,
    firewall,
    firewalld_default_deny,
    firewalld_direct_deny,
    firewalld_reset,
    life_cycle_absent,
    life_cycle_until_again,
    path_failures,
    ping,
    reboot_firewall,
    reboot_life_cycle,
    set_epns_address,
    sh,
)

pytestmark = pytest.mark.lab

DIRECT_PROBE = {"timeout": 5, "connect_timeout": 1.5}
PROXY_PROBE = {"timeout": 5, "connect_timeout": 1.5, "direct": False, "proxies": ["http://proxy.lab:3128"]}
def ruleset(lab: Any, host: str) -> str:
    """firewalld's runtime (what it put in nftables) and its permanent configuration files, byte for byte. Tables
    are sorted: a reload recreates `inet firewalld`, which moves it behind other tables in `nft list ruleset`."""
    # counters: iptables-nft rules (direct rules) count packets
    text = re.sub(r"counter packets \d+ bytes \d+", "counter", sh(lab, host, ["nft", "list", "ruleset"]))
    chunks = text.split("\ntable ")
    tables = sorted((c if c.startswith("table ") else "table " + c).rstrip("\n") for c in chunks if c.strip())
    return ("\n".join(tables) + "\n"
            + sh(lab, host, ["sh", "-c", "cd /etc/firewalld && find . -type f | sort | xargs md5sum"]))


def files(lab: Any, host: str) -> Dict[str, Any]:
    snap: Dict[str, Any] = dict(files_snapshot(lab, host))
    # names, modes and sizes of every file (directory sizes are overlayfs noise: a copied-up dir reports its own)
    snap["(firewalld)"] = sh(lab, host, ["sh", "-c", "cd /etc/firewalld && find . -type f -printf 'f %m %s %p\n' "
                              "-o -printf '%y %m %p\n' | sort"])
    snap["(etc)"] = sh(lab, host, ["ls", "-a", "/etc"])  # no directory of ours is left behind
    return snap


@pytest.fixture(scope="module")
def hosts(lab: Any) -> Dict[str, Dict[str, Any]]:
    chosen = {
        lab.agents[0]: {"args": {"backend": "auto", "extra_destinations": ["91.228.165.144/30"],
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True},
                        "probe": DIRECT_PROBE},
        lab.agents[1]: {"args": {"backend": "firewalld", "via_proxy": "proxy.lab:3128"}, "probe": PROXY_PROBE},
        lab.agents[2]: {"args": {"backend": "firewalld", "firewalld_mode": "direct",
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS,
                                 "refresh": True}, "probe": DIRECT_PROBE, "direct": True},
    }
    for host in chosen:
        firewalld_reset(lab, host)
        set_epns_address(lab, host, "198.18.1.10")
    yield chosen
    for host in chosen:
        firewalld_reset(lab, host)
        set_epns_address(lab, host, "198.18.1.10")


@pytest.fixture(scope="module")
def flow(lab: Any, hosts: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    policy_hosts = [h for h, s in hosts.items() if not s.get("direct")]
    direct_host = next(h for h, s in hosts.items() if s.get("direct"))
    for host in hosts:
        (firewalld_direct_deny if host == direct_host else firewalld_default_deny)(lab, host)
    ping(lab, list(hosts))
    args = {h: s["args"] for h, s in hosts.items()}

    def objects(record: Dict[str, Any]) -> None:
        record["policy_applied"] = {h: sh(lab, h, ["cat", "/etc/firewalld/policies/protectnet_epns.xml"])
                                    for h in policy_hosts}
        record["deny_applied"] = {h: sh(lab, h, ["firewall-cmd", "--info-policy", "lab-deny-egress"])
                                  for h in policy_hosts}
        record["direct_xml_applied"] = sh(lab, direct_host, ["cat", "/etc/firewalld/direct.xml"])
        record["direct_rules_applied"] = sh(lab, direct_host, ["firewall-cmd", "--direct", "--get-all-rules"])
        record["direct_iptables_applied"] = sh(lab, direct_host, ["sh", "-c", "iptables-save; ip6tables-save"])

    rec = life_cycle_until_again(lab, hosts, ruleset=lambda h: ruleset(lab, h), files=lambda h: files(lab, h),
                                 after_apply=objects)
    rec["direct_host"] = direct_host

    agent = lab.agents[0]
    movers = [agent, direct_host]
    for host in movers:
        set_epns_address(lab, host, "198.18.1.11")
    moved = firewall(lab, {h: args[h] for h in movers})
    rec["moved"], rec["moved_direct"] = moved[agent], moved[direct_host]
    rec["entries_moved"] = sh(lab, agent, ["firewall-cmd", "--ipset", "protectnet_epns_epns_v4", "--get-entries"])
    rec["entries_moved_direct"] = sh(lab, direct_host, ["ipset", "list", "protectnet_epns_epns_v4"])
    for host in movers:
        set_epns_address(lab, host, "198.18.1.10")
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed"] = ruleset(lab, agent)
    rec["refresh_out_direct"] = sh(lab, direct_host, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed_direct"] = ruleset(lab, direct_host)

    life_cycle_absent(lab, rec, ruleset=lambda h: ruleset(lab, h), files=lambda h: files(lab, h))
    rec["direct_xml_absent"] = sh(lab, direct_host, ["cat", "/etc/firewalld/direct.xml"])
    rec["ipsets_absent_direct"] = sh(lab, direct_host, ["ipset", "list", "-n"])
    return rec


def test_default_deny_blocks_epns_at_tcp_before(flow: Dict[str, Any]) -> None:
    for host, result in flow["probe_before"].items():
        assert result["verdict"] == "unreachable", (host, result["verdict_reason"])
        for path in result["paths"]:
            assert path["failure"]["stage"] in ("tcp", "proxy_connect"), (host, path_failures(result))


def test_check_mode_predicts_and_touches_nothing(flow: Dict[str, Any]) -> None:
    assert_check_mode_predicts_and_touches_nothing(flow, "firewalld")


def test_direct_mode_opens_egress_through_the_hosts_direct_rules(flow: Dict[str, Any]) -> None:
    host = flow["direct_host"]
    result = flow["apply"][host]
    assert not result.get("failed"), result.get("msg")
    assert result["firewalld_mode"] == "direct (firewalld 1.3.3)", result["firewalld_mode"]
    assert result["rollback"]["state"] == "confirmed"
    assert sorted(result["changes"]["containers"]["added"]) == [
        "direct chain ipv4 filter PROTECTNET_EPNS", "direct chain ipv6 filter PROTECTNET_EPNS",
        "ipset protectnet_epns_epns_v4", "ipset protectnet_epns_epns_v6"]
    argvs = [c["argv"] for c in result["commands"]]
    assert sum(1 for a in argvs if a[1:] == ["--reload"]) == 1 and not any("--permanent" in a for a in argvs)
    assert not any("protectnet_epns" in p for p in flow["policy_applied"])
    # direct.xml: ours right after <direct>, the host's lines byte for byte after them
    applied = flow["direct_xml_applied"].splitlines(keepends=True)
    own = [line for line in applied if "PROTECTNET_EPNS" in line]
    assert len(own) == 6 and applied[2:8] == own
    assert "".join(line for line in applied if line not in own) == DENY_DIRECT
    rules = flow["direct_rules_applied"]
    assert "--comment 'host own rule' -j ACCEPT" in rules and "ipv6 filter OUTPUT 99 -j REJECT" in rules
    saved = flow["direct_iptables_applied"]
    assert saved.index("-j PROTECTNET_EPNS") < saved.index("-A OUTPUT -j REJECT")
    assert "--match-set protectnet_epns_epns_v6 dst" in saved
    moved = flow["moved_direct"]
    assert moved["changes"]["rules"] == {"added": [], "removed": []}
    assert [c["argv"][1:] for c in moved["commands"]] == [
        ["--ipset", "protectnet_epns_epns_v4", "--add-entry", "198.18.1.11/32"],
        ["--ipset", "protectnet_epns_epns_v4", "--remove-entry", "198.18.1.10/32"]]
    assert "198.18.1.11" in flow["entries_moved_direct"] and "198.18.1.10\n" not in flow["entries_moved_direct"]
    assert '"changed": true' in flow["refresh_out_direct"]
    assert flow["ruleset_refreshed_direct"] == flow["ruleset_applied"][host]
    assert flow["direct_xml_absent"] == DENY_DIRECT and "protectnet" not in flow["ipsets_absent_direct"]


def test_apply_adds_a_policy_and_ipsets_beside_the_hosts_policy(flow: Dict[str, Any], lab: Any) -> None:
    agent1 = flow["apply"][lab.agents[0]]
    assert not agent1.get("failed"), agent1.get("msg")
    assert "auto: firewalld is the running firewall daemon" in agent1["backend_reason"], agent1["backend_reason"]
    assert sorted(agent1["changes"]["containers"]["added"]) == [
        "ipset protectnet_epns_epns_v4", "ipset protectnet_epns_epns_v6", "policy protectnet_epns"]
    # one reload, no `firewall-cmd --permanent` call (it leaves *.xml.old files behind)
    argvs = [c["argv"] for c in agent1["commands"]]
    assert sum(1 for a in argvs if a[1:] == ["--reload"]) == 1
    assert not any("--permanent" in a for a in argvs)
    for host in flow["policy_applied"]:
        assert '<policy target="CONTINUE" priority="-32768">' in flow["policy_applied"][host]
        assert "target: REJECT" in flow["deny_applied"][host] and "9999/tcp" in flow["deny_applied"][host]
        assert "ip daddr @protectnet_epns_" in flow["ruleset_applied"][host]
    assert agent1["rollback"]["state"] == "confirmed"
    assert any(f["path"] == "/etc/firewalld/policies/protectnet_epns.xml" for f in agent1["files"])


def test_epns_reachable_after_on_ipv4_and_ipv6(flow: Dict[str, Any], lab: Any) -> None:
    assert_reachable_after_on_ipv4_and_ipv6(flow, lab.agents[0])


def test_second_run_changes_nothing(flow: Dict[str, Any]) -> None:
    assert_second_run_changes_nothing(flow)


def test_address_change_updates_only_ipset_entries(flow: Dict[str, Any], lab: Any) -> None:
    moved = flow["moved"]
    assert moved["changed"] is True
    assert moved["changes"]["rules"] == {"added": [], "removed": []}
    assert moved["changes"]["containers"] == {"added": [], "removed": []}
    assert moved["changes"]["sets"]["changed"] == {"ipset protectnet_epns_epns_v4": {
        "added": ["198.18.1.11/32"], "removed": ["198.18.1.10/32"]}}
    assert [c["argv"][1:] for c in moved["commands"]] == [
        ["--ipset", "protectnet_epns_epns_v4", "--add-entry", "198.18.1.11/32"],
        ["--ipset", "protectnet_epns_epns_v4", "--remove-entry", "198.18.1.10/32"]]
    assert [f["path"] for f in moved["files"]] == ["/etc/firewalld/ipsets/protectnet_epns_epns_v4.xml"]
    assert "198.18.1.11/32" in flow["entries_moved"] and "198.18.1.10/32" not in flow["entries_moved"]
    assert '"changed": true' in flow["refresh_out"]
    assert flow["ruleset_refreshed"] == flow["ruleset_applied"][lab.agents[0]]


def test_absent_restores_the_exact_previous_ruleset_and_files(flow: Dict[str, Any]) -> None:
    assert_absent_restores_the_previous_state(flow)


def test_survives_a_restart_and_absent_leaves_the_boot_as_it_was(lab: Any) -> None:
    """Policy mode (agent1) and direct mode (agent3), persist: true by default: after the apply firewalld is stopped,
    the live ruleset flushed and firewalld started from its permanent configuration, as at boot; EPNS is reachable on
    IPv4 and IPv6 with the same ruleset. After state=absent the same restart gives the host's own back."""
    policy_host, direct_host = lab.agents[0], lab.agents[2]
    hosts = {policy_host: {"args": {"backend": "firewalld", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                           "probe": DIRECT_PROBE},
             direct_host: {"args": {"backend": "firewalld", "firewalld_mode": "direct"}, "probe": DIRECT_PROBE}}
    for host in hosts:
        firewalld_reset(lab, host)
        set_epns_address(lab, host, "198.18.1.10")
    try:
        firewalld_default_deny(lab, policy_host)
        firewalld_direct_deny(lab, direct_host)
        ping(lab, list(hosts))
        rec = reboot_life_cycle(lab, hosts, reboot=lambda h: reboot_firewall(lab, h, "firewalld"),
                                ruleset=lambda h: ruleset(lab, h), files=lambda h: files(lab, h))
        assert_survives_a_reboot(rec)
        assert "protectnet_epns" in rec["ruleset_rebooted"][direct_host]
    finally:
        for host in hosts:
            firewalld_reset(lab, host)


def test_rollback_fires_when_the_confirmation_is_blocked_and_bad_input(lab: Any) -> None:
    """agent3: new SSH sessions blocked, so the host reverts by itself. The server: firewalld installed but its
    daemon stopped; agent2: bad input. Nothing changes on either."""
    host, idle = lab.agents[2], lab.server
    for name in (host, idle):
        firewalld_reset(lab, name)
    firewalld_default_deny(lab, host)
    ping(lab, [host, idle])  # the session that applies the change (established: firewalld keeps it)
    # new SSH sessions dropped by a table of its own (a runtime firewalld change would not survive our reload)
    sh(lab, host, ["nft", "-f", "-"], input=BLOCK_NEW_SSH)
    before, files_before = ruleset(lab, host), files(lab, host)
    idle_before, idle_files = files(lab, idle), sh(lab, idle, ["nft", "list", "ruleset"])
    try:
        other = lab.agents[1]  # still has firewalld and its default deny from the flow above: bad input there
        other_before = ruleset(lab, other)
        results = firewall(lab, {host: {"backend": "firewalld", "rollback_seconds": 5, "refresh": True,
                                        "persist": False},
                                 idle: {"backend": "firewalld"}, other: {"backend": "auto", "ports": [8883, 70000]}})
        result = results[host]
        assert result.get("failed") is True and "rolled back" in result["msg"], result
        deadline = time.monotonic() + 10
        while ruleset(lab, host) != before and time.monotonic() < deadline:
            time.sleep(0.3)
        assert ruleset(lab, host) == before
        assert files(lab, host) == files_before
        assert "protectnet_epns" not in sh(lab, host, ["nft", "list", "ruleset"])
        assert '"ok": true' in sh(lab, host, ["sh", "-c", "cat /run/protectnet_epns/rollback/*/result.json"])
        stopped = results[idle]
        assert stopped.get("failed") is True and stopped.get("changed") is False
        assert "backend firewalld is installed but not usable: the firewalld daemon is not running" in stopped["msg"]
        bad = results[other]
        assert "70000 is not a TCP port" in bad["msg"] and bad.get("changed") is False
        assert ruleset(lab, other) == other_before
        assert files(lab, idle) == idle_before and sh(lab, idle, ["nft", "list", "ruleset"]) == idle_files
    finally:
        lab.run(host, ["nft", "delete", "table", "inet", "pn_block_ssh"])
        for name in (host, idle):
            firewalld_reset(lab, name)
