"""epns_firewall with the nftables backend, in the lab, against a host's own default-deny egress.

One scenario per host, all hosts in one ansible-playbook run per step: agent1 and the server open EPNS directly,
agent2 through the HTTP proxy (via_proxy). Every step is checked on every host, IPv4 and IPv6 alike.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict

import pytest
from _firewall import (
    BLOCK_NEW_SSH,
    CONFIRMED_ROLLBACK_SECONDS,
    NFT_DEFAULT_DENY,
    assert_absent_restores_the_previous_state,
    assert_check_mode_predicts_and_touches_nothing,
    assert_reachable_after_on_ipv4_and_ipv6,
    assert_second_run_changes_nothing,
    assert_survives_a_reboot,
    clean_host,
    file_mode,
    files_snapshot,
    firewall,
    life_cycle_absent,
    life_cycle_until_again,
    nft_default_deny,
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


def _ruleset(lab: Any, host: str) -> str:
    return sh(lab, host, ["nft", "list", "ruleset"])


@pytest.fixture(scope="module")
def hosts(lab: Any) -> Dict[str, Dict[str, Any]]:
    """host -> {'args': module args, 'probe': probe args} for the hosts this module uses."""
    chosen = {
        lab.agents[0]: {"args": {"backend": "auto", "extra_destinations": ["91.228.165.144/30", "91.228.165.148"],
                                 "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS, "refresh": True},
                        "probe": DIRECT_PROBE},
        lab.agents[1]: {"args": {"via_proxy": "proxy.lab:3128", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                        "probe": PROXY_PROBE},
        lab.server: {"args": {"backend": "nftables"}, "probe": DIRECT_PROBE},
    }
    for host in chosen:
        clean_host(lab, host)
        set_epns_address(lab, host, "198.18.1.10")
    yield chosen
    for host in chosen:
        clean_host(lab, host)
        set_epns_address(lab, host, "198.18.1.10")


@pytest.fixture(scope="module")
def flow(lab: Any, hosts: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """The whole life cycle once; the tests below read what it recorded."""
    for host in hosts:
        nft_default_deny(lab, host)
    rec = life_cycle_until_again(lab, hosts, ruleset=lambda h: _ruleset(lab, h),
                                 files=lambda h: files_snapshot(lab, h), after_apply=_record_conf_modes(lab))
    rec["again_check"] = firewall(lab, {h: s["args"] for h, s in hosts.items()}, args=["--check"])

    # An address that resolves differently (agent1, server): a set update, not a rebuild.
    moved = [lab.agents[0], lab.server]
    for host in moved:
        set_epns_address(lab, host, "198.18.1.11")
    rec["moved"] = firewall(lab, {h: s["args"] for h, s in hosts.items()})
    rec["ruleset_moved"] = {h: _ruleset(lab, h) for h in hosts}
    for host in moved:
        set_epns_address(lab, host, "198.18.1.10")
    # The refresh job (agent1 has refresh: true) brings it back, touching only the sets.
    agent = lab.agents[0]
    rec["cron"] = sh(lab, agent, ["cat", "/etc/cron.d/protectnet_epns_refresh"])
    rec["refresh_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])
    rec["ruleset_refreshed"] = _ruleset(lab, agent)
    rec["refresh_again_out"] = sh(lab, agent, ["/usr/bin/python3", "/etc/protectnet_epns/refresh.py"])

    life_cycle_absent(lab, rec, ruleset=lambda h: _ruleset(lab, h), files=lambda h: files_snapshot(lab, h))
    return rec


def _record_conf_modes(lab: Any) -> Callable[[Dict[str, Any]], None]:
    def record(rec: Dict[str, Any]) -> None:
        rec["conf_mode_applied"] = {h: file_mode(lab, h, "/etc/nftables.conf") for h in rec["hosts"]}
    return record


def test_persisting_keeps_the_mode_and_owner_of_nftables_conf(flow: Dict[str, Any]) -> None:
    for host in flow["hosts"]:
        before = flow["files_before"][host]["/etc/nftables.conf (mode owner group)"]
        assert before == "755 root root", before  # Debian ships it executable (#!/usr/sbin/nft -f)
        assert "include" in flow["apply"][host]["_stdout"]  # persistence did rewrite it
        assert flow["conf_mode_applied"][host] == before


def test_default_deny_blocks_epns_at_tcp_before(flow: Dict[str, Any]) -> None:
    for host, result in flow["probe_before"].items():
        assert result["verdict"] == "unreachable", (host, result["verdict_reason"])
        for path in result["paths"]:
            assert path["failure"]["class"] in ("tcp_timeout", "proxy_unreachable"), (host, path_failures(result))
            assert path["failure"]["stage"] in ("tcp", "proxy_connect"), (host, path_failures(result))


def test_check_mode_predicts_and_touches_nothing(flow: Dict[str, Any]) -> None:
    assert_check_mode_predicts_and_touches_nothing(flow)
    for host in flow["hosts"]:
        result = flow["check"][host]
        assert result["changes"]["rules"]["added"], result["changes"]
        assert result["destinations"] == flow["apply"][host]["destinations"]
    assert "+set inet protectnet_epns epns_v4:" in flow["check"][flow["hosts"].__iter__().__next__()]["_stdout"]


def test_apply_opens_epns_beside_the_default_deny(flow: Dict[str, Any], lab: Any) -> None:
    for host, result in flow["apply"].items():
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True
        assert result["backend"] == "nftables"
        ruleset = flow["ruleset_applied"][host]
        assert "table inet protectnet_epns" in ruleset
        # the hook sits at the top of the host's own chain; everything else of it is still there, in order
        chain = ruleset.split("table inet hostfw")[1]
        assert chain.index('comment "protectnet_epns') < chain.index("ct state established,related accept")
        assert 'tcp dport 9999 accept comment "the host\'s own unrelated rule"' in chain
        assert "policy drop" in chain
    agent1 = flow["apply"][lab.agents[0]]
    assert "default-deny" in agent1["backend_reason"], agent1["backend_reason"]
    assert agent1["destinations"]["epns"]["ipv4"] == ["91.228.165.144/30", "91.228.165.148/32", "198.18.1.10/32"]
    assert agent1["destinations"]["epns"]["ipv6"] == ["2001:db8:0:1::10/128"]
    assert agent1["destinations"]["epns"]["ports"] == [443, 8883]
    proxy = flow["apply"][lab.agents[1]]
    assert set(proxy["destinations"]) == {"proxy"}
    assert proxy["destinations"]["proxy"] == {"ports": [3128], "ipv4": ["198.18.1.20/32"],
                                              "ipv6": ["2001:db8:0:1::20/128"]}
    assert "tcp dport 3128" in flow["ruleset_applied"][lab.agents[1]]


def test_epns_reachable_after_on_ipv4_and_ipv6(flow: Dict[str, Any], lab: Any) -> None:
    assert_reachable_after_on_ipv4_and_ipv6(flow, lab.agents[0])


def test_management_session_survives_and_rollback_was_confirmed(flow: Dict[str, Any], lab: Any) -> None:
    for host in (lab.agents[0], lab.agents[1]):
        assert flow["apply"][host]["rollback"]["state"] == "confirmed"
    assert flow["apply"][lab.server]["rollback"] is None
    # the later steps ran over ssh on every host: the session and new sessions survived
    assert all(not r.get("unreachable") for r in flow["again"].values())


def test_second_run_changes_nothing(flow: Dict[str, Any]) -> None:
    assert_second_run_changes_nothing(flow)
    for host in flow["hosts"]:
        assert flow["again_check"][host]["changed"] is False


def test_new_address_is_a_set_update(flow: Dict[str, Any], lab: Any) -> None:
    for host in (lab.agents[0], lab.server):
        result = flow["moved"][host]
        assert result["changed"] is True
        changes = result["changes"]
        assert changes["rules"] == {"added": [], "removed": []}
        assert changes["containers"] == {"added": [], "removed": []}
        assert not changes["sets"]["added"] and not changes["sets"]["removed"]
        for update in changes["sets"]["changed"].values():
            assert update == {"added": ["198.18.1.11/32"], "removed": ["198.18.1.10/32"]}
        # the host's table got its copy updated in the same transaction
        assert "inet hostfw protectnet_epns_epns_v4" in changes["sets"]["changed"]
        script = result["commands"][0]["stdin"]
        assert all(line.split()[1] == "element" for line in script.splitlines()), script
    assert flow["moved"][lab.agents[1]]["changed"] is False


def _without_elements(ruleset: str) -> str:
    return "\n".join(line for line in ruleset.splitlines() if "elements" not in line and not line.startswith("\t\t\t "))


def test_refresh_job_updates_only_the_sets(flow: Dict[str, Any], lab: Any) -> None:
    assert "root /usr/bin/python3 /etc/protectnet_epns/refresh.py" in flow["cron"]
    assert '"changed": true' in flow["refresh_out"]
    assert "198.18.1.10" in flow["ruleset_refreshed"]
    assert "198.18.1.11" not in flow["ruleset_refreshed"]
    assert _without_elements(flow["ruleset_refreshed"]) == _without_elements(flow["ruleset_moved"][lab.agents[0]])
    assert flow["ruleset_refreshed"] == flow["ruleset_applied"][lab.agents[0]]
    assert '"changed": false' in flow["refresh_again_out"]


def test_absent_restores_the_exact_previous_ruleset_and_files(flow: Dict[str, Any]) -> None:
    assert_absent_restores_the_previous_state(flow)


# -- persisted: survives a reboot ------------------------------------------------------------------------------------


def test_survives_a_reboot_and_absent_leaves_the_boot_as_it_was(lab: Any) -> None:
    """The host's default deny lives in /etc/nftables.conf, as nftables.service loads it at boot: after the apply
    (persist: true by default), `nft flush ruleset; nft -f /etc/nftables.conf` brings EPNS back on IPv4 and IPv6 with
    the same ruleset; after state=absent the same boot gives the host's own ruleset and files back."""
    hosts = {lab.agents[0]: {"args": {"backend": "nftables", "rollback_seconds": CONFIRMED_ROLLBACK_SECONDS},
                             "probe": DIRECT_PROBE},
             lab.server: {"args": {"backend": "nftables"}, "probe": DIRECT_PROBE}}
    confs = {h: sh(lab, h, ["cat", "/etc/nftables.conf"]) for h in hosts}
    try:
        for host in hosts:
            clean_host(lab, host)
            set_epns_address(lab, host, "198.18.1.10")
            sh(lab, host, ["sh", "-c", "cat > /etc/nftables.conf"], input=confs[host] + NFT_DEFAULT_DENY)
        rec = reboot_life_cycle(lab, hosts, reboot=lambda h: reboot_firewall(lab, h, "nftables"),
                                ruleset=lambda h: _ruleset(lab, h), files=lambda h: files_snapshot(lab, h))
        assert_survives_a_reboot(rec)
        assert "table inet protectnet_epns" in rec["ruleset_rebooted"][lab.server]
        assert all("not persisted" not in w for r in rec["apply"].values() for w in r.get("warnings", []))
    finally:
        for host, conf in confs.items():
            clean_host(lab, host)
            sh(lab, host, ["sh", "-c", "cat > /etc/nftables.conf"], input=conf)


# -- rollback when the confirmation cannot arrive -------------------------------------------------------------------


def test_rollback_fires_when_the_confirmation_is_blocked(lab: Any) -> None:
    host = lab.agents[2] if len(lab.agents) > 2 else lab.agents[0]
    clean_host(lab, host)
    nft_default_deny(lab, host)
    ping(lab, [host])  # the ControlPersist master: the session that applies the change
    sh(lab, host, ["nft", "-f", "-"], input=BLOCK_NEW_SSH)  # new sessions can no longer get in
    before = _ruleset(lab, host)
    files_before = files_snapshot(lab, host)
    try:
        result = firewall(lab, {host: {"rollback_seconds": 5, "refresh": True}})[host]
        assert result.get("failed") is True, result
        assert "rolled back" in result["msg"], result["msg"]
        # new sessions stay blocked after the revert (the block is not part of the change), so the controller
        # cannot read the host's record: it says so instead of claiming the state was restored
        assert result["rollback"]["state"] == "unverified", result["rollback"]
        assert "unverified" in result["msg"] and "restored its previous" not in result["msg"]
        deadline = time.monotonic() + 10
        while _ruleset(lab, host) != before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _ruleset(lab, host) == before
        assert files_snapshot(lab, host) == files_before  # nothing persisted, no refresh job
        state = sh(lab, host, ["sh", "-c", "cat /run/protectnet_epns/rollback/*/result.json"])
        assert '"ok": true' in state
    finally:
        lab.run(host, ["nft", "delete", "table", "inet", "pn_block_ssh"])
        clean_host(lab, host)


# -- bad input ------------------------------------------------------------------------------------------------------
BAD_INPUT = [
    ({"host": "no-such-name.invalid"}, "cannot resolve 'no-such-name.invalid'"),
    ({"extra_destinations": ["91.228.165.145/28"]}, "'91.228.165.145/28' has host bits set: the network is "
                                                      "91.228.165.144/28"),
    ({"extra_destinations": ["91.228.165.300"]}, "'91.228.165.300' is not an IPv4/IPv6 address or CIDR"),
    ({"ports": [8883, 70000]}, "70000 is not a TCP port"),
    ({"backend": "ufw"}, "backend ufw is installed but not usable: ufw is installed but inactive"),
    ({"via_proxy": "proxy.lab"}, "via_proxy 'proxy.lab' must be HOST:PORT"),
    ({"rollback_seconds": 1}, "rollback_seconds: 1 is out of range"),
    ({"backend": "firewalld"}, "backend firewalld is installed but not usable: the firewalld daemon is not "
                               "running"),
]


def test_bad_input_fails_clearly_and_changes_nothing(lab: Any) -> None:
    hosts = [*lab.agents, lab.server]
    for host in hosts:
        clean_host(lab, host)
        nft_default_deny(lab, host)
    before = {h: _ruleset(lab, h) for h in hosts}
    try:
        for start in range(0, len(BAD_INPUT), len(hosts)):
            batch = dict(zip(hosts, BAD_INPUT[start:start + len(hosts)]))
            results = firewall(lab, {h: case[0] for h, case in batch.items()})
            for host, (args, words) in batch.items():
                result = results[host]
                assert result.get("failed") is True, (args, result)
                assert words in result["msg"], (args, result["msg"])
                assert "Traceback" not in result["msg"]
                assert result.get("changed") is False
                assert _ruleset(lab, host) == before[host], args
    finally:
        for host in hosts:
            clean_host(lab, host)
