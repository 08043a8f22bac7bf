"""epns_firewall with the ufw backend, in the lab, against a host's own ufw default-deny egress.

agent1 picks ufw by auto (rollback, refresh, extra destinations), agent2 asks for ufw and goes through the HTTP proxy.
The host's ufw: SSH allowed in, sshd's replies allowed out by source port *before* egress turns deny (conntrack
pitfall, FIREWALL-BACKENDS-NOTES.md), `default deny outgoing`, and an unrelated allow-out rule of its own.
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict

import pytest
from _ansible import probe
from _firewall import (
    BLOCK_NEW_SSH,
    CONFIRMED_ROLLBACK_SECONDS,
    UNRELATED,
    assert_absent_restores_the_previous_state,
    assert_check_mode_predicts_and_touches_nothing,
    assert_reachable_after_on_ipv4_and_ipv6,
    assert_second_run_changes_nothing,
    assert_survives_a_reboot,
    files_snapshot,
    firewall,
    life_cycle_absent,
    life_cycle_until_again,
    path_failures,
    ping,
    reboot_firewall,
    reboot_life_cycle,
    set_epns_address,
    sh,
    ufw_default_deny,
    ufw_reset,
)

pytestmark = pytest.mark.lab

DIRECT_PROBE = {"timeout": 5, "connect_timeout": 1.5}
PROXY_PROBE = {"timeout": 5, "connect_timeout": 1.5, "direct": False, "proxies": ["http://proxy.lab:3128"]}
UFW_FILES = ("/etc/ufw/user.rules", "/etc/ufw/user6.rules", "/etc/ufw/ufw.conf", "/etc/default/ufw")
def ruleset(lab: Any, host: str) -> str:
    """What ufw loaded (iptables-save of both families without counters) and its saved rules, byte for byte."""
    text = sh(lab, host, ["sh", "-c", "iptables-save; ip6tables-save"])
    text = "\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in text.splitlines() if not line.startswith("#"))
    return text + "\n" + "".join(sh(lab, host, ["cat", path]) for path in UFW_FILES[:2])


def files(lab: Any, host: str) -> Dict[str, Any]:
    snap: Dict[str, Any] = dict(files_snapshot(lab, host))
    for path in UFW_FILES:
        snap[path] = lab.run(host, ["cat", path]).stdout
    # names, modes and sizes of every file (directory sizes are overlayfs noise: a copied-up dir reports its own)
    snap["(ufw dir)"] = sh(lab, host, ["sh", "-c", "cd /etc/ufw && find . -type f -printf 'f %m %s %p\n' "
                              "-o -printf '%y %m %p\n' | sort"])
    snap["(etc)"] = sh(lab, host, ["ls", "-a", "/etc"])  # no directory of ours is left behind
    return snap


@pytest.fixture(scope="module")
def hosts(lab: Any) -> Dict[str, Dict[str, Any]]:
    chosen = {
        lab.agents[0]: {"args": {"backend": "auto", "extra_destinations": ["91.228.165.144/30"],
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True},
                        "probe": DIRECT_PROBE},
        lab.agents[1]: {"args": {"backend": "ufw", "via_proxy": "proxy.lab:3128"}, "probe": PROXY_PROBE},
    }
    for host in chosen:
        ufw_reset(lab, host)
        set_epns_address(lab, host, "198.18.1.10")
    yield chosen
    for host in chosen:
        ufw_reset(lab, host)
        set_epns_address(lab, host, "198.18.1.10")


@pytest.fixture(scope="module")
def flow(lab: Any, hosts: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    for host in hosts:
        ufw_default_deny(lab, host)
    ping(lab, list(hosts))  # the ControlPersist session, opened after ufw is on (so conntrack tracks it)
    args = {h: s["args"] for h, s in hosts.items()}

    def status(record: Dict[str, Any]) -> None:
        record["status_applied"] = {h: sh(lab, h, ["ufw", "status", "verbose"]) for h in hosts}

    rec = life_cycle_until_again(lab, hosts, ruleset=lambda h: ruleset(lab, h), files=lambda h: files(lab, h),
                                 after_apply=status)

    agent = lab.agents[0]
    set_epns_address(lab, agent, "198.18.1.11")
    rec["moved"] = firewall(lab, {agent: args[agent]})[agent]
    rec["added_moved"] = sh(lab, agent, ["ufw", "show", "added"])
    set_epns_address(lab, agent, "198.18.1.10")
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed"] = ruleset(lab, agent)

    life_cycle_absent(lab, rec, ruleset=lambda h: ruleset(lab, h), files=lambda h: files(lab, h))
    return rec


def test_default_deny_blocks_epns_at_tcp_before(flow: Dict[str, Any]) -> None:
    for host, result in flow["probe_before"].items():
        assert result["verdict"] == "unreachable", (host, result["verdict_reason"])
        for path in result["paths"]:
            assert path["failure"]["stage"] in ("tcp", "proxy_connect"), (host, path_failures(result))


def test_check_mode_predicts_and_touches_nothing(flow: Dict[str, Any]) -> None:
    assert_check_mode_predicts_and_touches_nothing(flow, "ufw")
    for host in flow["hosts"]:
        assert flow["check"][host]["commands"] == flow["apply"][host]["commands"]


def test_apply_adds_tagged_allow_out_rules_for_ipv4_and_ipv6(flow: Dict[str, Any], lab: Any) -> None:
    agent1 = flow["apply"][lab.agents[0]]
    assert not agent1.get("failed"), agent1.get("msg")
    assert "auto: ufw is the running firewall daemon" in agent1["backend_reason"], agent1["backend_reason"]
    assert "default outgoing deny" in agent1["backend_reason"]
    argvs = [c["argv"][1:] for c in agent1["commands"]]
    assert argvs == [
        ["allow", "out", "to", "91.228.165.144/30", "port", "443,8883", "proto", "tcp", "comment",
         "protectnet_epns epns ipv4 tcp 443,8883"],
        ["allow", "out", "to", "198.18.1.10/32", "port", "443,8883", "proto", "tcp", "comment",
         "protectnet_epns epns ipv4 tcp 443,8883"],
        ["allow", "out", "to", "2001:db8:0:1::10/128", "port", "443,8883", "proto", "tcp", "comment",
         "protectnet_epns epns ipv6 tcp 443,8883"]]
    status = flow["status_applied"][lab.agents[0]]
    assert "# protectnet_epns epns ipv6 tcp 443,8883" in status
    assert f"# {UNRELATED}" in status  # the host's own rule is still there
    assert "ALLOW OUT   22/tcp" in status
    proxy = flow["apply"][lab.agents[1]]
    assert proxy["changes"]["rules"]["added"] == ["protectnet_epns proxy ipv4 tcp 3128",
                                                  "protectnet_epns proxy ipv6 tcp 3128"]
    assert agent1["rollback"]["state"] == "confirmed"


def test_epns_reachable_after_on_ipv4_and_ipv6(flow: Dict[str, Any], lab: Any) -> None:
    assert_reachable_after_on_ipv4_and_ipv6(flow, lab.agents[0])


def test_second_run_changes_nothing(flow: Dict[str, Any]) -> None:
    assert_second_run_changes_nothing(flow)


def test_address_change_replaces_only_the_affected_rule(flow: Dict[str, Any], lab: Any) -> None:
    moved = flow["moved"]
    assert moved["changed"] is True and moved["changes"]["rules"] == {"added": [], "removed": []}
    assert moved["changes"]["sets"]["changed"] == {"protectnet_epns epns ipv4 tcp 443,8883: networks": {
        "added": ["198.18.1.11/32"], "removed": ["198.18.1.10/32"]}}
    assert [c["argv"][1:4] for c in moved["commands"]] == [["allow", "out", "to"], ["delete", "allow", "out"]]
    assert "198.18.1.11" in flow["added_moved"] and "198.18.1.10 " not in flow["added_moved"]
    # the refresh job puts the resolved address back, through the same two rule changes
    assert '"changed": true' in flow["refresh_out"]
    assert flow["ruleset_refreshed"] == flow["ruleset_applied"][lab.agents[0]]


def test_absent_restores_the_exact_previous_rules_and_files(flow: Dict[str, Any]) -> None:
    assert_absent_restores_the_previous_state(flow)


def test_survives_a_reboot_and_absent_leaves_the_boot_as_it_was(lab: Any) -> None:
    """After the apply the live rules are flushed and ufw loads itself from its files, as ufw-init does at boot:
    EPNS is reachable on IPv4 and IPv6 with the same rules; after state=absent the same boot gives the host's own
    rules and files back."""
    host = lab.agents[0]
    hosts = {host: {"args": {"backend": "ufw", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                    "probe": DIRECT_PROBE}}
    ufw_reset(lab, host)
    set_epns_address(lab, host, "198.18.1.10")
    try:
        ufw_default_deny(lab, host)
        ping(lab, [host])
        rec = reboot_life_cycle(lab, hosts, reboot=lambda h: reboot_firewall(lab, h, "ufw"),
                                ruleset=lambda h: ruleset(lab, h), files=lambda h: files(lab, h))
        assert_survives_a_reboot(rec)
        assert re.search(r"^-A ufw6-user-output -d 2001:db8:0:1::10(/128)? .*--dports 443,8883",
                         rec["ruleset_rebooted"][host], re.M), rec["ruleset_rebooted"][host]
    finally:
        ufw_reset(lab, host)


def test_rollback_fires_when_the_confirmation_is_blocked_and_bad_input(lab: Any) -> None:
    """agent3: new SSH sessions blocked, so the confirmation cannot arrive and the host reverts by itself.
    The server meanwhile: ufw installed but inactive; agent2: bad input. Nothing changes on either."""
    host, idle = lab.agents[2], lab.server
    for name in (host, idle):
        ufw_reset(lab, name)
    ufw_default_deny(lab, host)
    ping(lab, [host, idle])
    sh(lab, host, ["nft", "-f", "-"], input=BLOCK_NEW_SSH)
    before, files_before = ruleset(lab, host), files(lab, host)
    idle_before, idle_files = ruleset(lab, idle), files(lab, idle)
    try:
        other = lab.agents[1]  # still has ufw and its default deny from the flow above: bad input there
        other_before = ruleset(lab, other)
        results = firewall(lab, {host: {"backend": "ufw", "rollback_seconds": 5, "refresh": True},
                                 idle: {"backend": "ufw"},
                                 other: {"backend": "auto", "extra_destinations": ["91.228.165.145/28"]}})
        result = results[host]
        assert result.get("failed") is True and "rolled back" in result["msg"], result
        deadline = time.monotonic() + 10
        while ruleset(lab, host) != before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ruleset(lab, host) == before
        assert files(lab, host) == files_before
        assert '"ok": true' in sh(lab, host, ["sh", "-c", "cat /run/protectnet_epns/rollback/*/result.json"])
        inactive = results[idle]
        assert inactive.get("failed") is True and inactive.get("changed") is False
        assert "backend ufw is installed but not usable: ufw is installed but inactive" in inactive["msg"]
        bad = results[other]
        assert "has host bits set" in bad["msg"] and bad.get("changed") is False
        assert ruleset(lab, other) == other_before
        assert ruleset(lab, idle) == idle_before and files(lab, idle) == idle_files
    finally:
        lab.run(host, ["nft", "delete", "table", "inet", "pn_block_ssh"])
        for name in (host, idle):
            ufw_reset(lab, name)


def test_ipv6_turned_off_in_ufw_is_reported_not_applied(lab: Any) -> None:
    """IPV6=no in /etc/default/ufw: ufw cannot carry IPv6 rules, so the IPv6 part is reported as not applied (with
    the reason) and IPv4 is opened; nothing is silently missing."""
    host = lab.server
    ufw_reset(lab, host)
    defaults = sh(lab, host, ["cat", "/etc/default/ufw"])
    sh(lab, host, ["sh", "-c", "cat > /etc/default/ufw"], input=re.sub(r"(?m)^IPV6=.*$", "IPV6=no", defaults))
    try:
        ufw_default_deny(lab, host)
        ping(lab, [host])
        result = firewall(lab, {host: {"backend": "ufw"}})[host]
        assert not result.get("failed"), result.get("msg")
        assert [(n["family"], n["networks"]) for n in result["not_applied"]] == [("ipv6", ["2001:db8:0:1::10/128"])]
        assert "IPV6=no in /etc/default/ufw" in result["not_applied"][0]["reason"]
        assert any("IPv6 part" in w for w in result.get("warnings", [])), result.get("warnings")
        added = sh(lab, host, ["ufw", "show", "added"])
        assert "protectnet_epns epns ipv4" in added and "protectnet_epns epns ipv6" not in added
        after = probe(lab, {host: DIRECT_PROBE})[host]
        assert after["verdict"] == "reachable", path_failures(after)
        again = firewall(lab, {host: {"backend": "ufw"}})[host]
        assert again["changed"] is False, again.get("changes")
    finally:
        sh(lab, host, ["sh", "-c", "cat > /etc/default/ufw"], input=defaults)
        ufw_reset(lab, host)
