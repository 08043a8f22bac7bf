"""epns_firewall with the iptables backend, in the lab, against a host's own default-deny egress (iptables and
ip6tables policy DROP). Both variants at once: agent1 legacy with ipsets, agent2 iptables-nft with one rule per
network (ipset: false), the server iptables-nft picked by backend=auto. One ansible-playbook run per step.
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict, Iterator

import pytest
from _firewall import (
    CONFIRMED_ROLLBACK_SECONDS,
    assert_absent_restores_the_previous_state,
    assert_check_mode_predicts_and_touches_nothing,
    assert_second_run_changes_nothing,
    assert_survives_a_reboot,
    clean_host,
    files_snapshot,
    firewall,
    iptables_default_deny,
    life_cycle_absent,
    life_cycle_until_again,
    reboot_firewall,
    reboot_life_cycle,
    set_epns_address,
    sh,
)

pytestmark = pytest.mark.lab

DIRECT_PROBE = {"timeout": 5, "connect_timeout": 1.5}


def _ruleset(lab: Any, host: str, variant: str) -> str:
    """Both families' iptables-save (timestamps and packet counters removed), the ipsets and the nft ruleset."""
    parts = []
    for base in ("iptables", "ip6tables"):
        out = sh(lab, host, [f"{base}-{variant}-save"])
        parts.append("\n".join(re.sub(r" \[\d+:\d+\]$", "", line) for line in out.splitlines()
                               if not line.startswith("#")))
    parts.append(re.sub(r" initval 0x[0-9a-f]+", "", sh(lab, host, ["ipset", "save"])))
    parts.append(re.sub(r"counter packets \d+ bytes \d+", "counter", sh(lab, host, ["nft", "list", "ruleset"])))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def hosts(lab: Any) -> Iterator[Dict[str, Dict[str, Any]]]:
    chosen = {
        lab.agents[0]: {"variant": "legacy", "args": {"backend": "iptables", "iptables_variant": "legacy",
                                                      "extra_destinations": ["91.228.165.144/30"],
                                                      "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True}},
        lab.agents[1]: {"variant": "nft", "args": {"backend": "iptables", "ipset": False,
                                                   "extra_destinations": ["2001:db8:ff::/48"]}},
        lab.server: {"variant": "nft", "args": {"backend": "auto", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS}},
    }
    for spec in chosen.values():
        spec["probe"] = DIRECT_PROBE
    for host in chosen:
        clean_host(lab, host)
        set_epns_address(lab, host, "198.18.1.10")
    yield chosen
    for host in chosen:
        clean_host(lab, host)
        set_epns_address(lab, host, "198.18.1.10")


@pytest.fixture(scope="module")
def flow(lab: Any, hosts: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    for host, spec in hosts.items():
        iptables_default_deny(lab, host, spec["variant"])

    def rulesets(host: str) -> str:
        return _ruleset(lab, host, hosts[host]["variant"])

    rec = life_cycle_until_again(lab, hosts, ruleset=rulesets, files=lambda h: files_snapshot(lab, h))
    args = {h: s["args"] for h, s in hosts.items()}
    for host in (lab.agents[0], lab.agents[1]):
        set_epns_address(lab, host, "198.18.1.11")
    rec["moved"] = firewall(lab, args)
    rec["moved_ruleset"] = {h: rulesets(h) for h in hosts}
    for host in (lab.agents[0], lab.agents[1]):
        set_epns_address(lab, host, "198.18.1.10")
    agent = lab.agents[0]
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["refreshed"] = _ruleset(lab, agent, "legacy")
    rec["saved_v4"] = sh(lab, agent, ["cat", "/etc/iptables/rules.v4"])  # ipsets at runtime, no ipset loader
    life_cycle_absent(lab, rec, ruleset=rulesets, files=lambda h: files_snapshot(lab, h),
                      absent_args={"backend": "iptables"})
    return rec


def test_default_deny_blocks_epns_at_tcp_before(flow: Dict[str, Any]) -> None:
    for host, result in flow["probe_before"].items():
        assert result["verdict"] == "unreachable", host
        assert {p["failure"]["class"] for p in result["paths"]} == {"tcp_timeout"}, host


def test_check_mode_predicts_and_touches_nothing(flow: Dict[str, Any]) -> None:
    assert_check_mode_predicts_and_touches_nothing(flow)


def test_apply_opens_epns_in_both_variants_and_families(flow: Dict[str, Any], lab: Any) -> None:
    for host, spec in flow["hosts"].items():
        result = flow["apply"][host]
        assert not result.get("failed"), result.get("msg")
        assert result["backend"] == "iptables"
        assert result["iptables_variant"] == spec["variant"]
        applied = flow["ruleset_applied"][host]
        for family_save in applied.split("*filter")[1:3]:
            lines = [line for line in family_save.splitlines() if line.startswith("-A OUTPUT")]
            assert lines[0] == '-A OUTPUT -m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS'
            assert "--dport 9999" in "\n".join(lines)  # the host's own rule survives, after ours
            assert ":OUTPUT DROP" in family_save
    assert "auto: iptables" in flow["apply"][lab.server]["backend_reason"]
    assert "--match-set protectnet_epns_epns_v4" in flow["ruleset_applied"][lab.agents[0]]
    assert "-d 2001:db8:ff::/48 -p tcp" in flow["ruleset_applied"][lab.agents[1]]
    assert flow["apply"][lab.agents[0]]["rollback"]["state"] == "confirmed"
    for host, result in flow["probe_after"].items():
        assert result["verdict"] == "reachable", host
        for path in result["paths"]:
            assert {a["family"] for a in path["attempts"] if a["ok"]} == {"ipv4", "ipv6"}, (host, path["id"])


def test_second_run_changes_nothing(flow: Dict[str, Any]) -> None:
    assert_second_run_changes_nothing(flow)


def test_new_address_updates_only_the_addresses(flow: Dict[str, Any], lab: Any) -> None:
    with_ipset = flow["moved"][lab.agents[0]]
    assert with_ipset["changes"]["rules"] == {"added": [], "removed": []}
    assert with_ipset["changes"]["sets"]["changed"] == {
        "ipset protectnet_epns_epns_v4": {"added": ["198.18.1.11/32"], "removed": ["198.18.1.10/32"]}}
    assert [c["argv"][-1] for c in with_ipset["commands"]] == ["restore"]
    assert with_ipset["commands"][0]["argv"][-2:] == ["-exist", "restore"]
    per_network = flow["moved"][lab.agents[1]]
    assert per_network["changes"]["rules"] == {"added": [], "removed": []}
    script = per_network["commands"][0]["stdin"]
    # only our chain is rewritten; OUTPUT and the host's rules are not touched
    assert all(line.startswith(("*filter", "COMMIT", ":PROTECTNET_EPNS", "-A PROTECTNET_EPNS"))
               for line in script.splitlines()), script
    assert flow["moved"][lab.server]["changed"] is False


def test_refresh_job_updates_only_the_ipset(flow: Dict[str, Any], lab: Any) -> None:
    assert '"changed": true' in flow["refresh_out"]
    assert flow["refreshed"] == flow["ruleset_applied"][lab.agents[0]]


def test_saved_rules_list_networks_without_an_ipset_loader(flow: Dict[str, Any]) -> None:
    saved = flow["saved_v4"]
    assert '-A OUTPUT -m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS' in saved
    assert "-d 198.18.1.10/32 -p tcp -m multiport --dports 443,8883" in saved  # the refresh updated it too
    assert "198.18.1.11" not in saved and "match-set" not in saved


def test_absent_restores_the_exact_previous_ruleset_and_files(flow: Dict[str, Any]) -> None:
    assert_absent_restores_the_previous_state(flow)


def _save_default_deny(lab: Any, host: str, variant: str) -> None:
    """The host's default deny saved where netfilter-persistent loads it at boot, as `netfilter-persistent save`
    writes it (0640)."""
    iptables_default_deny(lab, host, variant)
    sh(lab, host, ["mkdir", "-p", "/etc/iptables"])
    for base, path in (("iptables", "/etc/iptables/rules.v4"), ("ip6tables", "/etc/iptables/rules.v6")):
        sh(lab, host, ["sh", "-c", f"umask 027; {base}-{variant}-save > {path}"])


def test_survives_a_reboot_and_absent_leaves_the_boot_as_it_was(lab: Any) -> None:
    """Both variants: after the apply (persist: true by default) the live rules and ipsets are flushed and loaded as
    netfilter-persistent does at boot (ipset restore, then iptables-restore and ip6tables-restore of the saved
    files); EPNS is reachable on IPv4 and IPv6. After state=absent the same boot gives the host's own back."""
    hosts = {lab.agents[0]: {"variant": "legacy", "probe": DIRECT_PROBE,
                             "args": {"backend": "iptables", "iptables_variant": "legacy",
                                      "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS}},
             lab.server: {"variant": "nft", "probe": DIRECT_PROBE, "args": {"backend": "iptables", "ipset": False}}}
    try:
        for host, spec in hosts.items():
            clean_host(lab, host)
            set_epns_address(lab, host, "198.18.1.10")
            _save_default_deny(lab, host, spec["variant"])
        rec = reboot_life_cycle(lab, hosts, reboot=lambda h: reboot_firewall(lab, h, "iptables", hosts[h]["variant"]),
                                ruleset=lambda h: _ruleset(lab, h, hosts[h]["variant"]),
                                files=lambda h: files_snapshot(lab, h))
        # no ipset loader in the lab: the saved rules name each network instead of the ipset (by design)
        assert_survives_a_reboot(rec, other_boot_ruleset=[lab.agents[0]])
        with_ipset = rec["ruleset_rebooted"][lab.agents[0]]
        assert "-d 198.18.1.10/32 -p tcp -m multiport --dports 443,8883" in with_ipset
        assert "-d 2001:db8:0:1::10/128 -p tcp -m multiport --dports 443,8883" in with_ipset
        assert "--match-set protectnet_epns_epns_v4" in rec["ruleset_applied"][lab.agents[0]]
    finally:
        for host in hosts:
            clean_host(lab, host)


def test_rollback_fires_when_the_confirmation_is_blocked(lab: Any) -> None:
    from _firewall import ping

    host = lab.agents[2] if len(lab.agents) > 2 else lab.agents[0]
    clean_host(lab, host)
    iptables_default_deny(lab, host, "legacy")
    ping(lab, [host])
    sh(lab, host, ["iptables-legacy", "-I", "INPUT", "-p", "tcp", "--dport", "22", "-m", "conntrack",
                   "--ctstate", "NEW", "-j", "DROP"])
    before = _ruleset(lab, host, "legacy")
    try:
        result = firewall(lab, {host: {"backend": "iptables", "rollback_seconds": 5}})[host]
        assert result.get("failed") is True and "rolled back" in result["msg"], result
        deadline = time.monotonic() + 10
        while _ruleset(lab, host, "legacy") != before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ruleset(lab, host, "legacy") == before
    finally:
        clean_host(lab, host)
