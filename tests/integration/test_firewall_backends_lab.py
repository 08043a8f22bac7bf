"""epns_firewall with every backend, in the lab, against a host's own default-deny egress: one table of backends
(_firewall_backends.BACKENDS) drives the shared life cycle: before, check mode, apply, the second run, state=absent.

One scenario per host, all hosts of a backend in one ansible-playbook run per step; every step is checked on every
host, IPv4 and IPv6 alike. The tests of one backend's own behaviour follow the shared ones, one section per backend
(they run while that backend's hosts are set up, right after its life cycle: pytest groups the tests by backend).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterator, TypeVar

import pytest
from _ansible import probe
from _firewall import (
    BLOCK_NEW_SSH,
    DENY_DIRECT,
    UNRELATED,
    assert_absent_restores_the_previous_state,
    assert_check_mode_predicts_and_touches_nothing,
    assert_reachable_after_on_ipv4_and_ipv6,
    assert_second_run_changes_nothing,
    assert_survives_a_reboot,
    clean_host,
    files_snapshot,
    firewall,
    firewalld_default_deny,
    firewalld_reset,
    iptables_default_deny,
    life_cycle_absent,
    life_cycle_until_again,
    nft_default_deny,
    path_failures,
    ping,
    reboot_firewall,
    reboot_life_cycle,
    set_epns_address,
    sh,
    ufw_default_deny,
    ufw_reset,
)
from _firewall_backends import (
    BACKENDS,
    DIRECT_PROBE,
    Backend,
    firewalld_files,
    firewalld_ruleset,
    iptables_ruleset,
    nft_ruleset,
    ufw_files,
    ufw_ruleset,
)
from _firewall_host import wait_for

pytestmark = pytest.mark.lab

F = TypeVar("F", bound=Callable[..., Any])


def only(name: str) -> Callable[[F], F]:
    """A test of one backend's own behaviour: it runs in that backend's group, after the shared life cycle."""
    return pytest.mark.parametrize("backend", [name], indirect=True)  # type: ignore[return-value]


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture(scope="module")
def hosts(lab: Any, backend: Backend) -> Iterator[Dict[str, Dict[str, Any]]]:
    """host -> {'args': module args, 'probe': probe args, ...} for the hosts this backend's life cycle uses."""
    chosen = backend.hosts(lab)
    for host in chosen:
        backend.reset(lab, host)
        set_epns_address(lab, host, "198.18.1.10")
    yield chosen
    for host in chosen:
        backend.reset(lab, host)
        set_epns_address(lab, host, "198.18.1.10")


@pytest.fixture(scope="module")
def flow(lab: Any, backend: Backend, hosts: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """The whole life cycle once per backend; the tests below read what it recorded."""
    for host, spec in hosts.items():
        backend.deny(lab, host, spec)
    if backend.ping_after_deny:
        ping(lab, list(hosts))

    def ruleset(host: str) -> str:
        return backend.ruleset(lab, host, hosts[host])

    def files(host: str) -> Dict[str, Any]:
        return backend.files(lab, host)

    after_apply = backend.after_apply
    rec = life_cycle_until_again(lab, hosts, ruleset=ruleset, files=files,
                                 after_apply=(lambda r: after_apply(lab, hosts, r)) if after_apply else None)
    if backend.check_again:
        rec["again_check"] = firewall(lab, {h: s["args"] for h, s in hosts.items()}, args=["--check"])
    backend.own_steps(lab, hosts, rec)
    life_cycle_absent(lab, rec, ruleset=ruleset, files=files, absent_args=backend.absent_args)
    if backend.after_absent:
        backend.after_absent(lab, hosts, rec)
    return rec


# -- the shared life cycle ------------------------------------------------------------------------------------------
def test_default_deny_blocks_epns_at_tcp_before(flow: Dict[str, Any], backend: Backend) -> None:
    for host, result in flow["probe_before"].items():
        assert result["verdict"] == "unreachable", (host, result["verdict_reason"])
        assert result["paths"], host
        for path in result["paths"]:
            if backend.blocked_classes is not None:
                assert path["failure"]["class"] in backend.blocked_classes, (host, path_failures(result))
            assert path["failure"]["stage"] in ("tcp", "proxy_connect"), (host, path_failures(result))


def test_check_mode_predicts_and_touches_nothing(flow: Dict[str, Any], backend: Backend) -> None:
    assert_check_mode_predicts_and_touches_nothing(flow, backend.name)
    if backend.check_mode_extra:
        backend.check_mode_extra(flow)


def test_epns_reachable_after_on_ipv4_and_ipv6(flow: Dict[str, Any], lab: Any) -> None:
    assert_reachable_after_on_ipv4_and_ipv6(flow, lab.agents[0])


def test_second_run_changes_nothing(flow: Dict[str, Any], backend: Backend) -> None:
    assert_second_run_changes_nothing(flow)
    if backend.check_again:
        for host in flow["hosts"]:
            assert flow["again_check"][host]["changed"] is False


def test_absent_restores_the_exact_previous_ruleset_and_files(flow: Dict[str, Any]) -> None:
    assert_absent_restores_the_previous_state(flow)


def test_survives_a_reboot_and_absent_leaves_the_boot_as_it_was(lab: Any, backend: Backend) -> None:
    """The host's own default deny as its boot loads it; after the apply (persist: true by default) the live ruleset
    is flushed and loaded the way the distribution does at boot (_firewall.reboot_firewall: nftables.service,
    netfilter-persistent, firewalld from its permanent configuration, ufw-init): EPNS is reachable on IPv4 and IPv6
    with the same ruleset; after state=absent the same boot gives the host's own ruleset and files back."""
    boot = backend.boot
    hosts = boot.hosts(lab)
    saved: Any = None
    try:
        for host in hosts:
            backend.reset(lab, host)
            set_epns_address(lab, host, "198.18.1.10")
        if boot.prepare:
            saved = boot.prepare(lab, hosts)
        else:
            for host, spec in hosts.items():
                backend.deny(lab, host, spec)
        if backend.ping_after_deny:
            ping(lab, list(hosts))
        rec = reboot_life_cycle(lab, hosts,
                                reboot=lambda h: reboot_firewall(lab, h, backend.name, hosts[h].get("variant", "nft")),
                                ruleset=lambda h: backend.ruleset(lab, h, hosts[h]),
                                files=lambda h: backend.files(lab, h))
        assert_survives_a_reboot(rec, other_boot_ruleset=boot.other_boot_ruleset(lab))
        boot.checks(lab, rec)
    finally:
        for host in hosts:
            backend.reset(lab, host)
        if boot.restore and saved is not None:
            boot.restore(lab, hosts, saved)


# -- nftables -------------------------------------------------------------------------------------------------------
@only("nftables")
def test_persisting_keeps_the_mode_and_owner_of_nftables_conf(flow: Dict[str, Any]) -> None:
    for host in flow["hosts"]:
        before = flow["files_before"][host]["/etc/nftables.conf (mode owner group)"]
        assert before == "755 root root", before  # Debian ships it executable (#!/usr/sbin/nft -f)
        assert "include" in flow["apply"][host]["_stdout"]  # persistence did rewrite it
        assert flow["conf_mode_applied"][host] == before


@only("nftables")
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


@only("nftables")
def test_management_session_survives_and_rollback_was_confirmed(flow: Dict[str, Any], lab: Any) -> None:
    for host in (lab.agents[0], lab.agents[1]):
        assert flow["apply"][host]["rollback"]["state"] == "confirmed"
    assert flow["apply"][lab.server]["rollback"] is None
    # the later steps ran over ssh on every host: the session and new sessions survived
    assert all(not r.get("unreachable") for r in flow["again"].values())


@only("nftables")
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


@only("nftables")
def test_refresh_job_updates_only_the_sets(flow: Dict[str, Any], lab: Any) -> None:
    assert "root /usr/bin/python3 /etc/protectnet_epns/refresh.py" in flow["cron"]
    assert '"changed": true' in flow["refresh_out"]
    assert "198.18.1.10" in flow["ruleset_refreshed"]
    assert "198.18.1.11" not in flow["ruleset_refreshed"]
    assert _without_elements(flow["ruleset_refreshed"]) == _without_elements(flow["ruleset_moved"][lab.agents[0]])
    assert flow["ruleset_refreshed"] == flow["ruleset_applied"][lab.agents[0]]
    assert '"changed": false' in flow["refresh_again_out"]


@only("nftables")
def test_rollback_fires_when_the_confirmation_is_blocked(lab: Any, backend: Backend) -> None:
    host = lab.agents[2] if len(lab.agents) > 2 else lab.agents[0]
    clean_host(lab, host)
    nft_default_deny(lab, host)
    ping(lab, [host])  # the ControlPersist master: the session that applies the change
    sh(lab, host, ["nft", "-f", "-"], input=BLOCK_NEW_SSH)  # new sessions can no longer get in
    before = nft_ruleset(lab, host)
    files_before = files_snapshot(lab, host)
    try:
        result = firewall(lab, {host: {"rollback_seconds": 5, "refresh": True}})[host]
        assert result.get("failed") is True, result
        assert "rolled back" in result["msg"], result["msg"]
        # new sessions stay blocked after the revert (the block is not part of the change), so the controller
        # cannot read the host's record: it says so instead of claiming the state was restored
        assert result["rollback"]["state"] == "unverified", result["rollback"]
        assert "unverified" in result["msg"] and "restored its previous" not in result["msg"]
        assert wait_for(lambda: nft_ruleset(lab, host), before) == before
        assert files_snapshot(lab, host) == files_before  # nothing persisted, no refresh job
        state = sh(lab, host, ["sh", "-c", "cat /run/protectnet_epns/rollback/*/result.json"])
        assert '"ok": true' in state
    finally:
        lab.run(host, ["nft", "delete", "table", "inet", "pn_block_ssh"])
        clean_host(lab, host)


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


@only("nftables")
def test_bad_input_fails_clearly_and_changes_nothing(lab: Any, backend: Backend) -> None:
    hosts = [*lab.agents, lab.server]
    for host in hosts:
        clean_host(lab, host)
        nft_default_deny(lab, host)
    before = {h: nft_ruleset(lab, h) for h in hosts}
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
                assert nft_ruleset(lab, host) == before[host], args
    finally:
        for host in hosts:
            clean_host(lab, host)


# -- iptables -------------------------------------------------------------------------------------------------------
@only("iptables")
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


@only("iptables")
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


@only("iptables")
def test_refresh_job_updates_only_the_ipset(flow: Dict[str, Any], lab: Any) -> None:
    assert '"changed": true' in flow["refresh_out"]
    assert flow["refreshed"] == flow["ruleset_applied"][lab.agents[0]]


@only("iptables")
def test_saved_rules_list_networks_without_an_ipset_loader(flow: Dict[str, Any]) -> None:
    saved = flow["saved_v4"]
    assert '-A OUTPUT -m comment --comment "protectnet_epns jump" -j PROTECTNET_EPNS' in saved
    assert "-d 198.18.1.10/32 -p tcp -m multiport --dports 443,8883" in saved  # the refresh updated it too
    assert "198.18.1.11" not in saved and "match-set" not in saved


@only("iptables")
def test_rollback_fires_when_the_confirmation_is_blocked_in_the_legacy_variant(lab: Any, backend: Backend) -> None:
    host = lab.agents[2] if len(lab.agents) > 2 else lab.agents[0]
    clean_host(lab, host)
    iptables_default_deny(lab, host, "legacy")
    ping(lab, [host])
    sh(lab, host, ["iptables-legacy", "-I", "INPUT", "-p", "tcp", "--dport", "22", "-m", "conntrack",
                   "--ctstate", "NEW", "-j", "DROP"])
    before = iptables_ruleset(lab, host, "legacy")
    try:
        result = firewall(lab, {host: {"backend": "iptables", "rollback_seconds": 5}})[host]
        assert result.get("failed") is True and "rolled back" in result["msg"], result
        assert wait_for(lambda: iptables_ruleset(lab, host, "legacy"), before) == before
    finally:
        clean_host(lab, host)


# -- firewalld ------------------------------------------------------------------------------------------------------
@only("firewalld")
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


@only("firewalld")
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


@only("firewalld")
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


@only("firewalld")
def test_rollback_fires_when_the_confirmation_is_blocked_and_bad_input(lab: Any, backend: Backend) -> None:
    """agent3: new SSH sessions blocked, so the host reverts by itself. The server: firewalld installed but its
    daemon stopped; agent2: bad input. Nothing changes on either."""
    host, idle = lab.agents[2], lab.server
    for name in (host, idle):
        firewalld_reset(lab, name)
    firewalld_default_deny(lab, host)
    ping(lab, [host, idle])  # the session that applies the change (established: firewalld keeps it)
    # new SSH sessions dropped by a table of its own (a runtime firewalld change would not survive our reload)
    sh(lab, host, ["nft", "-f", "-"], input=BLOCK_NEW_SSH)
    before, files_before = firewalld_ruleset(lab, host), firewalld_files(lab, host)
    idle_before, idle_files = firewalld_files(lab, idle), sh(lab, idle, ["nft", "list", "ruleset"])
    try:
        other = lab.agents[1]  # still has firewalld and its default deny from the flow above: bad input there
        other_before = firewalld_ruleset(lab, other)
        results = firewall(lab, {host: {"backend": "firewalld", "rollback_seconds": 5, "refresh": True,
                                        "persist": False},
                                 idle: {"backend": "firewalld"}, other: {"backend": "auto", "ports": [8883, 70000]}})
        result = results[host]
        assert result.get("failed") is True and "rolled back" in result["msg"], result
        assert wait_for(lambda: firewalld_ruleset(lab, host), before) == before
        assert firewalld_files(lab, host) == files_before
        assert "protectnet_epns" not in sh(lab, host, ["nft", "list", "ruleset"])
        assert '"ok": true' in sh(lab, host, ["sh", "-c", "cat /run/protectnet_epns/rollback/*/result.json"])
        stopped = results[idle]
        assert stopped.get("failed") is True and stopped.get("changed") is False
        assert "backend firewalld is installed but not usable: the firewalld daemon is not running" in stopped["msg"]
        bad = results[other]
        assert "70000 is not a TCP port" in bad["msg"] and bad.get("changed") is False
        assert firewalld_ruleset(lab, other) == other_before
        assert firewalld_files(lab, idle) == idle_before and sh(lab, idle, ["nft", "list", "ruleset"]) == idle_files
    finally:
        lab.run(host, ["nft", "delete", "table", "inet", "pn_block_ssh"])
        for name in (host, idle):
            firewalld_reset(lab, name)


# -- ufw ------------------------------------------------------------------------------------------------------------
@only("ufw")
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


@only("ufw")
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


@only("ufw")
def test_rollback_fires_when_the_confirmation_is_blocked_and_bad_input_beside_an_inactive_ufw(
        lab: Any, backend: Backend) -> None:
    """agent3: new SSH sessions blocked, so the confirmation cannot arrive and the host reverts by itself.
    The server meanwhile: ufw installed but inactive; agent2: bad input. Nothing changes on either."""
    host, idle = lab.agents[2], lab.server
    for name in (host, idle):
        ufw_reset(lab, name)
    ufw_default_deny(lab, host)
    ping(lab, [host, idle])
    sh(lab, host, ["nft", "-f", "-"], input=BLOCK_NEW_SSH)
    before, files_before = ufw_ruleset(lab, host), ufw_files(lab, host)
    idle_before, idle_files = ufw_ruleset(lab, idle), ufw_files(lab, idle)
    try:
        other = lab.agents[1]  # still has ufw and its default deny from the flow above: bad input there
        other_before = ufw_ruleset(lab, other)
        results = firewall(lab, {host: {"backend": "ufw", "rollback_seconds": 5, "refresh": True},
                                 idle: {"backend": "ufw"},
                                 other: {"backend": "auto", "extra_destinations": ["91.228.165.145/28"]}})
        result = results[host]
        assert result.get("failed") is True and "rolled back" in result["msg"], result
        assert wait_for(lambda: ufw_ruleset(lab, host), before) == before
        assert ufw_files(lab, host) == files_before
        assert '"ok": true' in sh(lab, host, ["sh", "-c", "cat /run/protectnet_epns/rollback/*/result.json"])
        inactive = results[idle]
        assert inactive.get("failed") is True and inactive.get("changed") is False
        assert "backend ufw is installed but not usable: ufw is installed but inactive" in inactive["msg"]
        bad = results[other]
        assert "has host bits set" in bad["msg"] and bad.get("changed") is False
        assert ufw_ruleset(lab, other) == other_before
        assert ufw_ruleset(lab, idle) == idle_before and ufw_files(lab, idle) == idle_files
    finally:
        lab.run(host, ["nft", "delete", "table", "inet", "pn_block_ssh"])
        for name in (host, idle):
            ufw_reset(lab, name)


@only("ufw")
def test_ipv6_turned_off_in_ufw_is_reported_not_applied(lab: Any, backend: Backend) -> None:
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
